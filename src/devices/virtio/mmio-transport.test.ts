import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceType, FeatureBit, Interrupt, MmioReg, Status } from './constants';
import { featureBit, TRANSPORT_FEATURES } from './features';
import { MmioTransport } from './mmio-transport';
import { MockMmioDriver, NO_EVENT_IDX, without } from './testing/mock-mmio-driver';
import { MockQueue } from './testing/mock-queue';
import { FakeDevice, RecordingLog, REGION_A, SpyLine, testMemory } from './testing/harness';

function setup(queueMaxSizes: number[] = [256], features = 0n) {
  const memory = testMemory();
  const device = new FakeDevice(queueMaxSizes);
  device.features = features;
  const line = new SpyLine();
  const log = new RecordingLog();
  const transport = new MmioTransport(device, memory, line, { name: 'virtio-test', log });
  const driver = new MockMmioDriver(transport);
  const queues = queueMaxSizes.map((_, i) => new MockQueue(memory, REGION_A + 0x1000 + i * 0x4000, 16));
  return { memory, device, line, log, transport, driver, queues };
}

test('registers read as the spec says after reset', () => {
  const { driver } = setup([256, 128], featureBit(0));
  assert.equal(driver.read(MmioReg.MAGIC_VALUE), 0x74726976);
  assert.equal(driver.read(MmioReg.VERSION), 2);
  assert.equal(driver.read(MmioReg.DEVICE_ID), DeviceType.Rng);
  assert.equal(driver.read(MmioReg.VENDOR_ID), 0);
  assert.equal(driver.read(MmioReg.STATUS), 0);
  assert.equal(driver.read(MmioReg.INTERRUPT_STATUS), 0);
  assert.equal(driver.read(MmioReg.CONFIG_GENERATION), 0);
  assert.equal(driver.read(MmioReg.QUEUE_NUM_MAX), 256);
  assert.equal(driver.read(MmioReg.QUEUE_READY), 0);
  driver.write(MmioReg.QUEUE_SEL, 1);
  assert.equal(driver.read(MmioReg.QUEUE_NUM_MAX), 128);
  driver.write(MmioReg.QUEUE_SEL, 2);
  assert.equal(driver.read(MmioReg.QUEUE_NUM_MAX), 0, 'a queue that does not exist has QueueNumMax 0');
  assert.equal(driver.read(MmioReg.SHM_LEN_LOW), 0xffff_ffff, 'no shared memory regions');
  assert.equal(driver.read(MmioReg.SHM_LEN_HIGH), 0xffff_ffff);
  assert.equal(driver.deviceFeatures(), TRANSPORT_FEATURES | featureBit(0));
  driver.write(MmioReg.DEVICE_FEATURES_SEL, 2);
  assert.equal(driver.read(MmioReg.DEVICE_FEATURES), 0, 'feature words past 63 read as 0');
});

test('accesses of the wrong width or alignment are ignored with a warning, never thrown', () => {
  const { transport, log } = setup();
  const two = Buffer.from([0xff, 0xff]);
  transport.read(MmioReg.MAGIC_VALUE, two);
  assert.deepEqual([...two], [0, 0]);
  transport.write(MmioReg.STATUS, Buffer.from([1]));
  transport.write(MmioReg.STATUS + 1, Buffer.from([1, 0, 0, 0]));
  const eight = Buffer.alloc(8, 0xff);
  transport.read(MmioReg.STATUS, eight);
  assert.deepEqual([...eight], [0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(transport.status, 0);
  assert.equal(log.warnings.length, 4);
  assert.match(log.warnings[0], /2-byte read/);
});

test('a driver that accepts every feature reaches FEATURES_OK and then DRIVER_OK', () => {
  const { driver, transport, device, queues } = setup([256], featureBit(3));
  assert.equal(driver.init(queues), Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK | Status.DRIVER_OK);
  assert.equal(transport.ackedFeatures, TRANSPORT_FEATURES | featureBit(3));
  assert.equal(transport.activated, true);
  assert.equal(device.active?.features, TRANSPORT_FEATURES | featureBit(3));
  assert.equal(driver.read(MmioReg.QUEUE_READY), 1);
});

test('FEATURES_OK is refused to a driver without VIRTIO_F_VERSION_1, and to one accepting unoffered bits', () => {
  const a = setup();
  assert.equal(a.driver.negotiate(without(FeatureBit.VERSION_1)), false);
  assert.equal(a.driver.status, Status.ACKNOWLEDGE | Status.DRIVER);
  assert.match(a.log.warnings.join('\n'), /VIRTIO_F_VERSION_1/);
  // Without FEATURES_OK, DRIVER_OK is refused too: the device never activates.
  a.driver.addStatus(Status.DRIVER_OK);
  assert.equal(a.transport.activated, false);

  const b = setup();
  assert.equal(b.driver.negotiate((f) => f | featureBit(5)), false);
  assert.match(b.log.warnings.join('\n'), /not offered/);
  // A driver may retry with a smaller set (spec 3.1.1 step 6 lets it reset and start over).
  assert.equal(b.driver.negotiate(), true);
});

test('driver features can only be written between DRIVER and FEATURES_OK', () => {
  const { driver, transport, log } = setup();
  driver.writeDriverFeatures(TRANSPORT_FEATURES);
  assert.equal(transport.ackedFeatures, 0n);
  assert.equal(driver.negotiate(), true);
  driver.writeDriverFeatures(featureBit(FeatureBit.VERSION_1));
  assert.equal(transport.ackedFeatures, TRANSPORT_FEATURES, 'unchanged after FEATURES_OK');
  assert.ok(log.warnings.some((w) => /DriverFeatures write/.test(w)));
});

test('status bits must be added in order, are never cleared but by reset, and FAILED sticks', () => {
  const { driver, transport, log } = setup();
  driver.write(MmioReg.STATUS, Status.DRIVER);
  assert.equal(transport.status, 0, 'DRIVER before ACKNOWLEDGE');
  driver.write(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER);
  assert.equal(transport.status, Status.ACKNOWLEDGE | Status.DRIVER, 'several steps in one write, in order');
  driver.write(MmioReg.STATUS, Status.ACKNOWLEDGE);
  assert.equal(transport.status, Status.ACKNOWLEDGE | Status.DRIVER, 'clearing a bit is ignored');
  driver.write(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER | Status.DRIVER_OK);
  assert.equal(transport.status & Status.DRIVER_OK, 0, 'DRIVER_OK before FEATURES_OK');
  driver.addStatus(Status.FAILED);
  assert.equal(transport.status, Status.ACKNOWLEDGE | Status.DRIVER | Status.FAILED);
  driver.addStatus(Status.FEATURES_OK);
  assert.equal(transport.status & Status.FEATURES_OK, 0, 'nothing but reset after FAILED');
  driver.write(MmioReg.STATUS, 0);
  assert.equal(transport.status, 0);
  assert.ok(log.warnings.length >= 4);
});

test('queue registers are only writable after FEATURES_OK, before DRIVER_OK, while the queue is not ready', () => {
  const { driver, transport, queues } = setup();
  driver.write(MmioReg.QUEUE_NUM, 16);
  assert.equal(transport.queues[0].size, 256, 'before FEATURES_OK');
  assert.equal(driver.negotiate(), true);
  driver.setupQueue(0, queues[0]);
  const q = transport.queues[0];
  assert.deepEqual([q.size, q.ready, q.descTable, q.availRing, q.usedRing], [16, true, BigInt(queues[0].desc), BigInt(queues[0].avail), BigInt(queues[0].used)]);
  assert.equal(driver.read(MmioReg.QUEUE_DESC_LOW), queues[0].desc);
  driver.write(MmioReg.QUEUE_NUM, 8);
  assert.equal(q.size, 16, 'the queue is ready');
  driver.write(MmioReg.QUEUE_READY, 0);
  driver.write(MmioReg.QUEUE_DESC_HIGH, 1);
  assert.equal(q.descTable, (1n << 32n) | BigInt(queues[0].desc), 'the high half lands above the low half');
  driver.write(MmioReg.QUEUE_DESC_HIGH, 0);
  driver.write(MmioReg.QUEUE_READY, 1);
  driver.addStatus(Status.DRIVER_OK);
  assert.equal(transport.activated, true);
  driver.write(MmioReg.QUEUE_READY, 0);
  assert.equal(q.ready, true, 'after DRIVER_OK');
  driver.write(MmioReg.QUEUE_SEL, 7);
  driver.write(MmioReg.QUEUE_NUM, 8);
  assert.equal(driver.read(MmioReg.QUEUE_READY), 0, 'queue 7 does not exist');
});

test('full round trip: the driver posts a chain, the device fills it, the interrupt fires, the driver sees used.idx', () => {
  const { driver, transport, device, line, queues, memory } = setup();
  driver.init(queues, NO_EVENT_IDX);
  const head = queues[0].addChain([{ addr: 0x8000, len: 4 }, { addr: 0x9000, len: 16, write: true }, { addr: 0x9100, len: 8, write: true }]);
  driver.notify(0);
  assert.equal(device.chains.length, 1);
  assert.equal(device.chains[0].readableBytes, 4);
  assert.equal(queues[0].usedIdx, 1);
  assert.deepEqual(queues[0].usedElem(0), { id: head, len: 24 });
  assert.deepEqual([...memory.read(0x9000, 16)], Array(16).fill(0xab));
  assert.deepEqual([...memory.read(0x9100, 8)], Array(8).fill(0xab));
  assert.equal(line.count, 1);
  assert.equal(driver.ackInterrupt(), Interrupt.USED_BUFFER);
  assert.equal(transport.interruptStatus, 0, 'InterruptACK clears the bit');
});

test('the ioeventfd path (notifyQueue) does what a QueueNotify write does, and notifications before DRIVER_OK are ignored', () => {
  const { driver, transport, device, line, queues, log } = setup();
  transport.notifyQueue(0);
  assert.match(log.warnings[0], /before DRIVER_OK/);
  driver.init(queues, NO_EVENT_IDX);
  queues[0].addChain([{ addr: 0x9000, len: 8, write: true }]);
  transport.notifyQueue(0);
  assert.equal(device.chains.length, 1);
  assert.equal(line.count, 1);
  transport.notifyQueue(3);
  assert.match(log.warnings.at(-1) ?? '', /does not exist/);
});

test('avail.flags NO_INTERRUPT suppresses the interrupt without EVENT_IDX', () => {
  const { driver, line, queues } = setup();
  driver.init(queues, NO_EVENT_IDX);
  queues[0].availFlags = 1;
  queues[0].addChain([{ addr: 0x9000, len: 8, write: true }]);
  driver.notify(0);
  assert.equal(queues[0].usedIdx, 1);
  assert.equal(line.count, 0);
});

test('config space reads and writes reach the device; ConfigGeneration and the config interrupt follow changes', () => {
  const { driver, transport, device, line, queues } = setup();
  assert.equal(driver.read(MmioReg.CONFIG), 0x13121110);
  const one = Buffer.alloc(1);
  transport.read(MmioReg.CONFIG + 5, one);
  assert.equal(one[0], 0x15);
  transport.read(MmioReg.CONFIG + 0x40, one);
  assert.equal(one[0], 0, 'past the end of the config space');
  transport.write(MmioReg.CONFIG + 1, Buffer.from([0xee]));
  assert.equal(device.config[1], 0xee);
  device.active = undefined;
  driver.init(queues);
  device.active!.interrupt.signalConfigChange();
  assert.equal(driver.read(MmioReg.CONFIG_GENERATION), 1);
  assert.equal(line.count, 1);
  assert.equal(driver.ackInterrupt(), Interrupt.CONFIG_CHANGE);
  assert.equal(transport.configGeneration, 1);
});

test('writing 0 to Status resets the device and its queues', () => {
  const { driver, transport, device, queues } = setup();
  driver.init(queues);
  queues[0].addChain([{ addr: 0x9000, len: 8, write: true }]);
  driver.notify(0);
  driver.write(MmioReg.STATUS, 0);
  assert.equal(device.resets, 1);
  assert.equal(transport.activated, false);
  assert.equal(transport.status, 0);
  assert.equal(transport.interruptStatus, 0);
  assert.equal(transport.ackedFeatures, 0n);
  const q = transport.queues[0];
  assert.deepEqual([q.ready, q.size, q.descTable, q.nextAvail, q.nextUsed, q.activated], [false, 256, 0n, 0, 0, false]);
  assert.equal(driver.read(MmioReg.QUEUE_READY), 0);
  // And it comes back: a second initialisation works from scratch.
  queues.splice(0, 1, new MockQueue(queues[0].memory, 0x6000, 8));
  driver.init(queues);
  queues[0].addChain([{ addr: 0x9000, len: 8, write: true }]);
  driver.notify(0);
  assert.equal(queues[0].usedIdx, 1);
});

test('a device that throws while activating or processing leaves the transport in DEVICE_NEEDS_RESET, not crashed', () => {
  const a = setup();
  a.device.failActivate = true;
  const status = a.driver.init(a.queues);
  assert.ok(status & Status.DEVICE_NEEDS_RESET);
  assert.equal(a.transport.activated, false);
  assert.equal(a.driver.ackInterrupt(), Interrupt.CONFIG_CHANGE);

  const b = setup();
  b.driver.init(b.queues);
  b.device.failProcess = true;
  b.driver.notify(0);
  assert.ok(b.transport.status & Status.DEVICE_NEEDS_RESET);
  assert.match(b.log.errors[0], /processing refused by the test/);
});

test('a device asking for a queue larger than 256 or not a power of two is a programming error', () => {
  assert.throws(() => setup([512]), RangeError);
  assert.throws(() => setup([100]), RangeError);
  assert.throws(() => setup([256], featureBit(FeatureBit.RING_PACKED)), /does not implement/);
});

test('queues past requiredQueues() are optional: left alone they stay inactive, made ready they work', () => {
  const a = setup([256, 256]);
  a.device.required = 1;
  a.driver.init(a.queues.slice(0, 1));
  assert.equal(a.transport.activated, true);
  assert.equal(a.transport.queues[1].activated, false);
  a.driver.notify(1);
  assert.equal(a.transport.status & Status.DEVICE_NEEDS_RESET, 0);

  const b = setup([256, 256]);
  b.device.required = 1;
  b.driver.init(b.queues);
  b.queues[1].addChain([{ addr: 0x9000, len: 4, write: true }]);
  b.driver.notify(1);
  assert.equal(b.queues[1].usedIdx, 1);
});

test('activation starts the used ring from zero even if the driver reused stale memory', () => {
  const { driver, queues, memory } = setup();
  queues[0].usedIdx = 9;
  memory.writeU16(queues[0].used, 1);
  driver.init(queues);
  assert.equal(queues[0].usedIdx, 0);
  assert.equal(queues[0].usedFlags, 0);
  queues[0].addChain([{ addr: 0x9000, len: 4, write: true }]);
  driver.notify(0);
  assert.equal(queues[0].usedIdx, 1);
});

test('EVENT_IDX end to end: the interrupt fires exactly when used.idx passes used_event', () => {
  const { driver, line, queues, transport } = setup();
  driver.init(queues);
  assert.ok(transport.ackedFeatures & featureBit(FeatureBit.RING_EVENT_IDX));
  queues[0].usedEvent = 2;
  const counts = [];
  for (let i = 0; i < 4; i++) {
    queues[0].addChain([{ addr: 0x9000, len: 4, write: true }]);
    driver.notify(0);
    counts.push(line.count);
  }
  // used.idx 0->1 and 1->2 do not pass used_event 2; 2->3 does (entry 2 used); 3->4 is past it already.
  assert.deepEqual(counts, [0, 0, 1, 1]);
  assert.equal(queues[0].availEvent, 4, 'and the device asks for a notification at the next entry');
});
