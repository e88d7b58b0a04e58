/**
 * A virtio device's transport and queues saved mid-I/O and restored onto a fresh device over the
 * same guest memory (as a snapshot restore does): the driver's configuration and the ring
 * positions carry over, a request the device held back is served after the restore, and the
 * guest's rings are never rewritten.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../ratelimit/fake-clock';
import { MmioReg, Status } from './constants';
import { MmioTransport } from './mmio-transport';
import { toJsonValue, fromJsonValue } from '../../snapshot/plain-data';
import { MockMmioDriver } from './testing/mock-mmio-driver';
import { MockQueue } from './testing/mock-queue';
import { RecordingLog, REGION_A, REGION_B, SpyLine, testMemory } from './testing/harness';
import { VirtioRng } from './rng/device';

test('an rng device saved with a held request serves it after a restore, continuing the used ring', () => {
  const memory = testMemory();
  const log = new RecordingLog();
  const clock = new FakeClock();
  const device = new VirtioRng({ log, clock, timers: clock, fill: (b) => b.fill(7), rateLimiter: { ops: { size: 1, oneTimeBurst: 0, refillTimeMs: 60_000 } } });
  const transport = new MmioTransport(device, memory, new SpyLine(), { name: 'virtio-rng', log });
  const driver = new MockMmioDriver(transport);
  const queue = new MockQueue(memory, REGION_A + 0x1000, 16);
  assert.equal(driver.init([queue]) & Status.DRIVER_OK, Status.DRIVER_OK);
  const first = queue.addChain([{ addr: REGION_B, len: 16, write: true }]);
  const second = queue.addChain([{ addr: REGION_B + 16, len: 16, write: true }]);
  driver.notify(0);
  assert.deepEqual(queue.usedSince(0), [{ id: first, len: 16 }], 'the second request is held by the rate limiter');
  assert.equal(device.holdsRequest, true);

  // Through the snapshot's JSON encoding, as in a file.
  const saved = fromJsonValue(JSON.parse(JSON.stringify(toJsonValue(transport.saveState([1]))))) as ReturnType<MmioTransport['saveState']>;
  device.dispose();
  const ringsBefore = Buffer.from(memory.read(REGION_A + 0x1000, 0x1000));

  const fresh = new VirtioRng({ log, fill: (b) => b.fill(9) });
  const restored = new MmioTransport(fresh, memory, new SpyLine(), { name: 'virtio-rng', log });
  restored.restoreState(saved);
  const afterDriver = new MockMmioDriver(restored);
  assert.equal(afterDriver.read(MmioReg.STATUS) & Status.DRIVER_OK, Status.DRIVER_OK, 'the driver still sees its device running');
  assert.equal(afterDriver.read(MmioReg.QUEUE_READY), 1);
  assert.deepEqual(queue.usedSince(0), [{ id: first, len: 16 }, { id: second, len: 16 }], 'the held request was served once, after the first');
  assert.equal(memory.read(REGION_B + 16, 1)[0], 9, 'by the restored device');
  // Only the used ring's entries and index moved; the driver's areas are as they were.
  const ringsAfter = memory.read(REGION_A + 0x1000, 0x1000);
  assert.ok(ringsAfter.subarray(0, 16 * 16).equals(ringsBefore.subarray(0, 16 * 16)), 'the descriptor table is untouched');
  const third = queue.addChain([{ addr: REGION_B + 32, len: 8, write: true }]);
  afterDriver.notify(0);
  assert.deepEqual(queue.usedSince(2), [{ id: third, len: 8 }]);
  fresh.dispose();
});

test('restoring onto a device with another number of queues is refused with a sentence', () => {
  const memory = testMemory();
  const log = new RecordingLog();
  const transport = new MmioTransport(new VirtioRng({ log }), memory, new SpyLine(), { name: 'virtio-rng', log });
  const saved = transport.saveState();
  saved.queues.push(saved.queues[0]);
  assert.throws(() => new MmioTransport(new VirtioRng({ log }), memory, new SpyLine(), { name: 'virtio-rng', log }).restoreState(saved), /the snapshot has 2 queues for this device, which has 1/);
});

/** An rng transport whose driver got one request served; `ack` says whether it acknowledged the interrupt. */
function savedWithInterrupt(ack: boolean) {
  const memory = testMemory();
  const log = new RecordingLog();
  const line = new SpyLine();
  const transport = new MmioTransport(new VirtioRng({ log, fill: (b) => b.fill(7) }), memory, line, { name: 'virtio-rng', log });
  const driver = new MockMmioDriver(transport);
  const queue = new MockQueue(memory, REGION_A + 0x1000, 16);
  driver.init([queue]);
  queue.addChain([{ addr: REGION_B, len: 16, write: true }]);
  driver.notify(0);
  assert.equal(line.count, 1);
  if (ack) driver.write(MmioReg.INTERRUPT_ACK, driver.read(MmioReg.INTERRUPT_STATUS));
  return { memory, log, saved: fromJsonValue(JSON.parse(JSON.stringify(toJsonValue(transport.saveState())))) as ReturnType<MmioTransport['saveState']> };
}

test('an interrupt raised after KVM\'s state was saved (not acknowledged in the snapshot) is raised again once the restored vCPUs exist, not before', () => {
  const { memory, log, saved } = savedWithInterrupt(false);
  const line = new SpyLine();
  const restored = new MmioTransport(new VirtioRng({ log }), memory, line, { name: 'virtio-rng', log });
  restored.restoreState(saved);
  assert.equal(line.count, 0, 'not during the restore: the vCPUs do not exist yet');
  restored.redeliverPendingInterrupt();
  assert.equal(line.count, 1);
  assert.equal(new MockMmioDriver(restored).read(MmioReg.INTERRUPT_STATUS), 1, 'the driver sees a used-buffer interrupt');
});

test('no interrupt is raised again after a restore when the driver had acknowledged it', () => {
  const { memory, log, saved } = savedWithInterrupt(true);
  const line = new SpyLine();
  const restored = new MmioTransport(new VirtioRng({ log }), memory, line, { name: 'virtio-rng', log });
  restored.restoreState(saved);
  restored.redeliverPendingInterrupt();
  assert.equal(line.count, 0);
});
