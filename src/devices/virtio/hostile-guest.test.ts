/**
 * A hostile or broken driver, end to end through the MMIO transport: every case ends in a
 * logged error and either a dropped request or DEVICE_NEEDS_RESET with a config interrupt,
 * and no bus access ever throws.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DescFlag, Interrupt, MmioReg, Status } from './constants';
import { MmioTransport } from './mmio-transport';
import { FakeDevice, HOLE, RecordingLog, REGION_A, REGION_B, SpyLine, testMemory } from './testing/harness';
import { MockMmioDriver, NO_EVENT_IDX } from './testing/mock-mmio-driver';
import { MockQueue } from './testing/mock-queue';

function setup(queueCount = 1) {
  const memory = testMemory();
  const device = new FakeDevice(Array(queueCount).fill(256));
  const line = new SpyLine();
  const log = new RecordingLog();
  const transport = new MmioTransport(device, memory, line, { name: 'virtio-test', log });
  const driver = new MockMmioDriver(transport);
  const queues = Array.from({ length: queueCount }, (_, i) => new MockQueue(memory, REGION_A + 0x1000 + i * 0x4000, 16));
  return { memory, device, line, log, transport, driver, queues };
}

function assertNeedsReset(t: ReturnType<typeof setup>, pattern: RegExp): void {
  assert.ok(t.transport.status & Status.DEVICE_NEEDS_RESET, 'DEVICE_NEEDS_RESET is set');
  assert.ok(t.log.errors.some((e) => pattern.test(e)), `an error matching ${pattern} in ${JSON.stringify(t.log.errors)}`);
  assert.ok(t.driver.ackInterrupt() & Interrupt.CONFIG_CHANGE, 'a config-change interrupt told the driver');
}

test('a malformed chain is dropped (used length 0, interrupt raised) and the device keeps working', () => {
  const t = setup();
  t.driver.init(t.queues, NO_EVENT_IDX);
  t.queues[0].setDescriptor(0, { addr: HOLE, len: 8, flags: DescFlag.WRITE });
  t.queues[0].offer(0);
  t.driver.notify(0);
  assert.deepEqual(t.queues[0].usedSince(0), [{ id: 0, len: 0 }]);
  assert.equal(t.device.chains.length, 0, 'the device never saw it');
  assert.equal(t.line.count, 1, 'the driver learns it can reclaim the descriptor');
  assert.match(t.log.errors[0], /virtio-test queue 0: dropping the chain at descriptor 0: .*outside guest RAM/);
  assert.equal(t.transport.status & Status.DEVICE_NEEDS_RESET, 0);
  t.queues[0].setDescriptor(1, { addr: 0x9000, len: 8, flags: DescFlag.WRITE });
  t.queues[0].offer(1);
  t.driver.notify(0);
  assert.deepEqual(t.queues[0].usedElem(1), { id: 1, len: 8 });
});

test('an avail idx more than the queue size ahead needs a reset; the device stops touching the rings', () => {
  const t = setup();
  t.driver.init(t.queues);
  t.queues[0].availIdx = 17;
  t.driver.notify(0);
  assertNeedsReset(t, /available index 17 is 17 entries ahead of the device's 0, more than the queue size 16/);
  assert.equal(t.queues[0].usedIdx, 0);
  t.queues[0].availIdx = 1;
  t.driver.notify(0);
  assert.equal(t.device.chains.length, 0, 'a broken queue pops nothing');
  assert.equal(t.log.errors.length, 1, 'and says so once');
  // The driver resets and starts over: everything works again.
  t.queues[0].availIdx = 0;
  t.driver.init(t.queues);
  assert.equal(t.transport.status & Status.DEVICE_NEEDS_RESET, 0);
  t.queues[0].addChain([{ addr: 0x9000, len: 4, write: true }]);
  t.driver.notify(0);
  assert.equal(t.queues[0].usedIdx, 1);
});

test('an available ring entry naming a descriptor outside the table needs a reset', () => {
  const t = setup();
  t.driver.init(t.queues);
  t.queues[0].offer(16);
  t.driver.notify(0);
  assertNeedsReset(t, /names descriptor 16, outside a table of 16/);
});

test('a driver scribbling over used.idx needs a reset; scribbling over old used elements is harmless', () => {
  const t = setup();
  t.driver.init(t.queues);
  const q = t.queues[0];
  q.addChain([{ addr: 0x9000, len: 4, write: true }]);
  t.driver.notify(0);
  t.memory.writeU32(q.used + 4, 0xdead_beef); // element 0, already consumed by the driver
  q.addChain([{ addr: 0x9000, len: 4, write: true }]);
  t.driver.notify(0);
  assert.deepEqual(q.usedElem(1), { id: 1, len: 4 });
  assert.equal(t.transport.status & Status.DEVICE_NEEDS_RESET, 0);
  q.usedIdx = 7;
  q.addChain([{ addr: 0x9000, len: 4, write: true }]);
  t.driver.notify(0);
  assertNeedsReset(t, /overwrote the used ring \(its index reads 7, the device wrote 2\)/);
  assert.equal(q.usedIdx, 7, 'the device does not write over it again');
});

test('a queue placed outside guest RAM fails activation with DEVICE_NEEDS_RESET', () => {
  const t = setup();
  const status = t.driver.init([new MockQueue(t.memory, HOLE, 16)]);
  assert.ok(status & Status.DRIVER_OK);
  assert.equal(t.transport.activated, false);
  assert.equal(t.device.active, undefined);
  assertNeedsReset(t, /queue 0 cannot be used: its descriptor table of 256 bytes at 0x20000 \(\+256\) is outside guest RAM/);
  t.driver.notify(0);
  assert.match(t.log.warnings.at(-1) ?? '', /before DRIVER_OK|ignoring/);
});

test('a queue straddling two regions, of a bad size, or never made ready fails activation', () => {
  const a = setup();
  a.driver.init([new MockQueue(a.memory, REGION_B - 0x80, 16)]);
  assertNeedsReset(a, /straddles two regions/);

  const b = setup();
  b.driver.negotiate();
  b.driver.setupQueue(0, b.queues[0]);
  b.driver.write(MmioReg.QUEUE_READY, 0);
  b.driver.write(MmioReg.QUEUE_NUM, 12);
  b.driver.write(MmioReg.QUEUE_READY, 1);
  b.driver.addStatus(Status.DRIVER_OK);
  assertNeedsReset(b, /size 12 is not a power of two/);

  const c = setup(2);
  c.driver.negotiate();
  c.driver.setupQueue(0, c.queues[0]);
  c.driver.addStatus(Status.DRIVER_OK);
  assertNeedsReset(c, /queue 1 cannot be used: it is not ready/);
});

test('garbage register writes never throw and never change state they should not', () => {
  const t = setup();
  t.driver.init(t.queues);
  const before = t.transport.status;
  for (const offset of [0x000, 0x004, 0x008, 0x00c, 0x010, 0x034, 0x060, 0x0fc, 0x0c0, 0x0f0, 0x0ff]) {
    for (const len of [1, 2, 4, 8]) t.transport.write(offset, Buffer.alloc(len, 0xff));
  }
  t.driver.notify(0xffff_ffff);
  t.transport.write(MmioReg.CONFIG + 0xeff, Buffer.alloc(8, 0xff));
  t.transport.read(MmioReg.CONFIG + 0xeff, Buffer.alloc(8));
  assert.equal(t.transport.status, before);
  assert.equal(t.transport.activated, true);
  assert.ok(t.log.warnings.length > 0);
});

test('a flood of guest-triggered messages is rate limited', async () => {
  const { GuestTriggeredLog } = await import('./guest-log');
  const sink = new RecordingLog();
  let now = 0;
  const limited = new GuestTriggeredLog(sink, 3, 1000, () => now);
  for (let i = 0; i < 10; i++) limited.warn(`w${i}`);
  assert.deepEqual(sink.warnings, ['w0', 'w1', 'w2']);
  now = 1000;
  limited.error('e');
  assert.deepEqual(sink.warnings.at(-1), '7 more messages triggered by the guest were suppressed.');
  assert.deepEqual(sink.errors, ['e']);
});

test('a malformed chain whose drop finds the used ring scribbled stops the queue at once', () => {
  const t = setup();
  t.driver.init(t.queues);
  const q = t.queues[0];
  q.setDescriptor(5, { addr: HOLE + 0x100, len: 4 });
  q.offer(5);
  q.addChain([{ addr: 0x9000, len: 4, write: true }]);
  q.usedIdx = 3;
  t.driver.notify(0);
  assertNeedsReset(t, /overwrote the used ring/);
  assert.equal(t.device.chains.length, 0, 'the good chain behind it is not processed by a broken queue');
});

test('debug lines the sink would drop do not use up the budget of guest-triggered warnings', async () => {
  const { GuestTriggeredLog } = await import('./guest-log');
  const warnings: string[] = [];
  const debugs: string[] = [];
  const sink = { error: () => {}, warn: (m: string) => warnings.push(m), debug: (m: string) => debugs.push(m), enabled: (l: string) => l !== 'Debug' };
  const log = new GuestTriggeredLog(sink, 2, 1000, () => 0);
  for (let i = 0; i < 10; i++) log.debug(`probe ${i}`);
  log.warn('real 1');
  log.warn('real 2');
  assert.deepEqual(debugs, []);
  assert.deepEqual(warnings, ['real 1', 'real 2']);
  assert.equal(log.enabled('Debug'), false);
});
