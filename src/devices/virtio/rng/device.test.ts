import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../ratelimit/fake-clock';
import { DeviceType, MmioReg, Status } from '../constants';
import { TRANSPORT_FEATURES } from '../features';
import { MmioTransport } from '../mmio-transport';
import { MockMmioDriver } from '../testing/mock-mmio-driver';
import { MockQueue } from '../testing/mock-queue';
import { RecordingLog, REGION_A, REGION_B, SpyLine, testMemory } from '../testing/harness';
import { MAX_BYTES_PER_REQUEST, VirtioRng, VirtioRngOptions } from './device';

function setup(opts: VirtioRngOptions = {}) {
  const memory = testMemory();
  const log = new RecordingLog();
  const device = new VirtioRng({ log, ...opts });
  const line = new SpyLine();
  const transport = new MmioTransport(device, memory, line, { name: 'virtio-rng', log });
  const driver = new MockMmioDriver(transport);
  const queue = new MockQueue(memory, REGION_A + 0x1000, 16);
  assert.equal(driver.init([queue]) & Status.DRIVER_OK, Status.DRIVER_OK);
  return { memory, device, driver, queue, line, log };
}

test('device id 4, no device features, no config space', () => {
  const { driver } = setup();
  assert.equal(driver.read(MmioReg.DEVICE_ID), DeviceType.Rng);
  assert.equal(driver.deviceFeatures(), TRANSPORT_FEATURES);
  assert.equal(driver.read(MmioReg.CONFIG), 0);
});

test('fills every writable buffer of a chain with CSPRNG bytes and reports the length', () => {
  const { memory, driver, queue, line } = setup();
  memory.write(REGION_B, Buffer.alloc(300));
  const head = queue.addChain([{ addr: REGION_B, len: 100, write: true }, { addr: REGION_B + 100, len: 200, write: true }]);
  driver.notify(0);
  assert.deepEqual(queue.usedSince(0), [{ id: head, len: 300 }]);
  const bytes = memory.read(REGION_B, 300);
  assert.ok(bytes.some((b) => b !== 0) && new Set(bytes).size > 64, 'looks random');
  assert.equal(line.count, 1);
});

test('uses the injected source, caps a request at 64 KiB, returns a chain with no writable buffer empty', () => {
  const { memory, device, driver, queue, log } = setup({ fill: (b) => b.fill(0x5a) });
  const big = queue.addChain([{ addr: REGION_B, len: 0x10000, write: true }, { addr: 0x40000, len: 0x10000, write: true }]);
  const readOnly = queue.addChain([{ addr: REGION_B, len: 16 }]);
  driver.notify(0);
  assert.deepEqual(queue.usedSince(0), [{ id: big, len: MAX_BYTES_PER_REQUEST }, { id: readOnly, len: 0 }]);
  assert.equal(memory.read(REGION_B + 0xffff, 1)[0], 0x5a);
  assert.equal(device.metrics.bytes, MAX_BYTES_PER_REQUEST);
  assert.equal(device.metrics.invalidRequests, 1);
  assert.match(log.warnings.join('\n'), /no device-writable buffer/);
});

test('a failing host source returns the request empty and keeps the device working', () => {
  let fail = true;
  const { device, driver, queue } = setup({ fill: (b) => { if (fail) throw new Error('no entropy'); b.fill(1); } });
  const a = queue.addChain([{ addr: REGION_B, len: 32, write: true }]);
  driver.notify(0);
  fail = false;
  const b = queue.addChain([{ addr: REGION_B, len: 32, write: true }]);
  driver.notify(0);
  assert.deepEqual(queue.usedSince(0), [{ id: a, len: 0 }, { id: b, len: 32 }]);
  assert.equal(device.metrics.hostRngFails, 1);
});

test('bandwidth limit: 64 bytes per 100 ms; the held request is filled when the timer fires', () => {
  const clock = new FakeClock();
  const { device, driver, queue, line } = setup({ clock, timers: clock, rateLimiter: { bandwidth: { size: 64, oneTimeBurst: 0, refillTimeMs: 100 } } });
  const heads = [0, 1, 2].map((i) => queue.addChain([{ addr: REGION_B + 64 * i, len: 64, write: true }]));
  driver.notify(0);
  assert.deepEqual(queue.usedSince(0).map((u) => u.id), [heads[0]]);
  assert.equal(device.metrics.rateLimiterThrottled, 1);
  driver.notify(0);
  assert.equal(queue.usedIdx, 1, 'a kick while blocked changes nothing');
  clock.advance(99);
  assert.equal(queue.usedIdx, 1);
  clock.advance(1);
  assert.equal(queue.usedIdx, 2);
  clock.advance(100);
  assert.deepEqual(queue.usedSince(0).map((u) => u.id), heads);
  assert.ok(line.count >= 1);
});

test('ops limit, and a PATCH that lifts it releases the held request', () => {
  const clock = new FakeClock();
  const { device, driver, queue } = setup({ clock, timers: clock, rateLimiter: { ops: { size: 1, oneTimeBurst: 0, refillTimeMs: 60_000 } } });
  queue.addChain([{ addr: REGION_B, len: 8, write: true }]);
  queue.addChain([{ addr: REGION_B + 8, len: 8, write: true }]);
  driver.notify(0);
  assert.equal(queue.usedIdx, 1);
  device.updateRateLimiter({ ops: { size: 0, oneTimeBurst: 0, refillTimeMs: 0 } });
  clock.advance(0);
  assert.equal(queue.usedIdx, 2);
});

test('a driver reset while a request is held drops it; the queue restarts empty', () => {
  const clock = new FakeClock();
  const { device, driver, queue } = setup({ clock, timers: clock, rateLimiter: { ops: { size: 1, oneTimeBurst: 0, refillTimeMs: 1000 } } });
  queue.addChain([{ addr: REGION_B, len: 8, write: true }]);
  queue.addChain([{ addr: REGION_B + 8, len: 8, write: true }]);
  driver.notify(0);
  driver.write(MmioReg.STATUS, 0);
  clock.advance(1000);
  assert.equal(queue.usedIdx, 1, 'nothing written after the reset');
  assert.equal(device.metrics.requests, 1);
});
