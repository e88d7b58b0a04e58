import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../ratelimit/fake-clock';
import type { GuestMemory } from '../../../memory/guest-memory';
import { Interrupt, MmioReg, Status } from '../constants';
import { MmioTransport } from '../mmio-transport';
import { MockMmioDriver, without } from '../testing/mock-mmio-driver';
import { MockQueue } from '../testing/mock-queue';
import { RecordingLog, REGION_A, REGION_B, REGION_C, SpyLine, testMemory } from '../testing/harness';
import { BalloonFeature, ConfigOffset, HINT_CMD_ID_DONE, HINT_CMD_ID_STOP } from './constants';
import { BalloonSettings, CHAINS_PER_TURN, MAX_PFNS_PER_CHAIN, PAGES_PER_TURN, pagesFor, VirtioBalloon } from './device';
import { encodeStats } from './stats';

const PAGE = 4096;
/** Page numbers of REGION_B (guest RAM the tests may drop) and of the hole after it (not RAM). */
const B_PFN = REGION_B / PAGE;
const HOLE_PFN = 0x20000 / PAGE;
/** Where the tests put the buffers the driver hands over (page-number arrays, stats, commands). */
const SCRATCH = REGION_C;

const DEFAULTS: BalloonSettings = { amountMib: 0, deflateOnOom: false, statsPollingIntervalS: 0, freePageHinting: false, freePageReporting: false };

/** A discard that does what MADV_DONTNEED does to anonymous memory (zeros) and records guest ranges. */
function recordingDiscard(memory: GuestMemory) {
  const ranges: Array<[number, number]> = [];
  const discard = (bytes: Buffer): number => {
    const region = memory.regions.find((r) => r.bytes.buffer === bytes.buffer)!;
    ranges.push([region.start + bytes.byteOffset - region.bytes.byteOffset, bytes.length]);
    bytes.fill(0);
    return 0;
  };
  return { ranges, discard };
}

function setup(settings: Partial<BalloonSettings> = {}, opts: { hugePageSize?: number; accept?: (f: bigint) => bigint } = {}) {
  const memory = testMemory();
  const clock = new FakeClock();
  const log = new RecordingLog();
  const { ranges, discard } = recordingDiscard(memory);
  const device = new VirtioBalloon({ ...DEFAULTS, ...settings, discard, timers: clock, log, hugePageSize: opts.hugePageSize });
  const line = new SpyLine();
  const transport = new MmioTransport(device, memory, line, { name: 'virtio-balloon', log });
  const driver = new MockMmioDriver(transport);
  const queues = device.queueMaxSizes.map((_, i) => new MockQueue(memory, REGION_A + 0x2000 * i, 256));
  const accepted = opts.accept ? opts.accept(driver.deviceFeatures()) : driver.deviceFeatures();
  const used = device.requiredQueues(accepted);
  assert.equal(driver.init(queues.slice(0, used), opts.accept) & Status.DRIVER_OK, Status.DRIVER_OK);
  let scratch = SCRATCH;
  /** Writes `data` to fresh scratch memory and returns its address. */
  const put = (data: Buffer): number => {
    const at = scratch;
    memory.write(at, data);
    scratch += Math.ceil(data.length / 16) * 16;
    return at;
  };
  const pfnBuffer = (pfns: number[]): number => {
    const b = Buffer.alloc(pfns.length * 4);
    pfns.forEach((p, i) => b.writeUInt32LE(p >>> 0, i * 4));
    return put(b);
  };
  const sendPfns = (queue: number, pfns: number[]): number => {
    const head = queues[queue].addChain([{ addr: pfnBuffer(pfns), len: pfns.length * 4 }]);
    driver.notify(queue);
    return head;
  };
  return { memory, clock, log, device, driver, queues, line, ranges, put, sendPfns };
}

const configU32 = (driver: MockMmioDriver, offset: number) => driver.read(MmioReg.CONFIG + offset);

test('features, queues and config space follow the configuration', () => {
  const { driver, device } = setup({ amountMib: 3, deflateOnOom: true, statsPollingIntervalS: 1, freePageHinting: true, freePageReporting: true });
  const bits = [BalloonFeature.STATS_VQ, BalloonFeature.DEFLATE_ON_OOM, BalloonFeature.FREE_PAGE_HINT, BalloonFeature.PAGE_REPORTING];
  for (const b of bits) assert.ok(device.features & (1n << BigInt(b)), `feature ${b}`);
  assert.equal(device.queueMaxSizes.length, 5);
  assert.equal(driver.read(MmioReg.DEVICE_ID), 5);
  assert.equal(configU32(driver, ConfigOffset.NUM_PAGES), 3 * 256);
  assert.equal(configU32(driver, ConfigOffset.ACTUAL), 0);
  const plain = setup();
  assert.equal(plain.device.features, 0n);
  assert.equal(plain.device.queueMaxSizes.length, 2);
});

test('the driver writes actual; a new target raises a config-change interrupt', () => {
  const { driver, device, line } = setup({ statsPollingIntervalS: 1 });
  driver.write(MmioReg.CONFIG + ConfigOffset.ACTUAL, 512);
  driver.write(MmioReg.CONFIG + ConfigOffset.NUM_PAGES, 999); // device-owned: ignored
  const before = line.count;
  device.setTarget(8);
  assert.equal(line.count, before + 1);
  assert.equal(driver.ackInterrupt() & Interrupt.CONFIG_CHANGE, Interrupt.CONFIG_CHANGE);
  assert.equal(configU32(driver, ConfigOffset.NUM_PAGES), 8 * 256);
  const s = device.statistics();
  assert.deepEqual([s.target_pages, s.target_mib, s.actual_pages, s.actual_mib], [2048, 8, 512, 2]);
});

test('inflate drops adjacent pages in one call, refuses pages outside RAM, and returns the chain', () => {
  const { memory, device, queues, ranges, log, sendPfns } = setup();
  memory.view(REGION_B, 4 * PAGE).fill(0x77);
  const head = sendPfns(0, [B_PFN, B_PFN + 1, B_PFN + 2, HOLE_PFN, 0xffff_ffff, B_PFN + 3, B_PFN + 8]);
  assert.deepEqual(ranges, [[REGION_B, 4 * PAGE], [REGION_B + 8 * PAGE, PAGE]]);
  assert.equal(memory.view(REGION_B, 4 * PAGE).some((b) => b !== 0), false, 'inflated pages read as zero');
  assert.deepEqual(queues[0].usedSince(0), [{ id: head, len: 0 }]);
  assert.equal(device.metrics.inflateCount, 1);
  assert.equal(device.metrics.eventFails, 1);
  assert.match(log.warnings.join('\n'), /2 page\(s\) of the inflate chain .* outside guest RAM/);
});

test('a run of pages that crosses from one region into the next is split at the boundary', () => {
  const { ranges, sendPfns } = setup();
  const lastOfA = REGION_B / PAGE - 1;
  sendPfns(0, [lastOfA, lastOfA + 1]);
  // REGION_A and REGION_B are adjacent but separate mappings: one madvise each.
  assert.deepEqual(ranges, [[lastOfA * PAGE, PAGE], [REGION_B, PAGE]]);
});

test('deflate is accepted and touches nothing; pages outside RAM are counted', () => {
  const { device, queues, ranges, sendPfns } = setup();
  const head = sendPfns(1, [B_PFN, HOLE_PFN]);
  assert.deepEqual(ranges, []);
  assert.deepEqual(queues[1].usedSince(0), [{ id: head, len: 0 }]);
  assert.equal(device.metrics.deflateCount, 1);
  assert.equal(device.metrics.eventFails, 1);
});

test('a chain without readable bytes, or a short one, is returned without effect', () => {
  const { device, queues, driver, ranges } = setup();
  const h = queues[0].addChain([{ addr: SCRATCH, len: 16, write: true }]);
  const short = queues[0].addChain([{ addr: SCRATCH, len: 3 }]);
  driver.notify(0);
  assert.deepEqual(queues[0].usedSince(0), [{ id: h, len: 0 }, { id: short, len: 0 }]);
  assert.deepEqual(ranges, []);
  assert.equal(device.metrics.inflateCount, 2);
});

test('stats: the buffer is read and held; the poll returns it; unknown tags are logged and skipped', () => {
  const { device, queues, driver, clock, put, log } = setup({ statsPollingIntervalS: 2 });
  const stats = encodeStats([[4, 1000n], [5, 4096n], [6, 2n ** 60n], [99, 1n], [2, 7n]]);
  const head = queues[2].addChain([{ addr: put(stats), len: stats.length }]);
  driver.notify(2);
  assert.equal(queues[2].usedIdx, 0, 'held until the next poll');
  const s = device.statistics();
  assert.equal(s.free_memory, 1000);
  assert.equal(s.total_memory, 4096);
  assert.equal(s.available_memory, Number.MAX_SAFE_INTEGER, 'a huge value is clamped');
  assert.equal(s.major_faults, 7);
  assert.match(log.warnings.join('\n'), /balloon: unknown stats update tag: 99/);
  clock.advance(1999);
  assert.equal(queues[2].usedIdx, 0);
  clock.advance(1);
  assert.deepEqual(queues[2].usedSince(0), [{ id: head, len: 0 }]);
  assert.equal(device.metrics.statsUpdates, 1);
  // Nothing held now: the next poll returns nothing until the driver sends a buffer again.
  clock.advance(2000);
  assert.equal(queues[2].usedIdx, 1);
});

test('stats interval: 0 <-> non-zero refused after boot; a new interval asks for stats at once', () => {
  const { device, queues, driver, put, clock } = setup({ statsPollingIntervalS: 5 });
  assert.throws(() => device.setStatsInterval(0), /Statistics cannot be enabled\/disabled after activation\./);
  const buf = encodeStats([[4, 1n]]);
  queues[2].addChain([{ addr: put(buf), len: buf.length }]);
  driver.notify(2);
  device.setStatsInterval(1);
  assert.equal(queues[2].usedIdx, 1, 'returned at once');
  assert.equal(device.config.statsPollingIntervalS, 1);
  assert.equal(clock.pending, 1, 'one poll timer');
  const off = setup();
  assert.throws(() => off.device.setStatsInterval(3), /cannot be enabled\/disabled/);
  assert.throws(() => off.device.statistics(), (e: Error & { code?: string }) => e.code === 'ESTATSDISABLED');
});

test('a stats buffer with nothing readable is a failed update, not a crash', () => {
  const { device, queues, driver } = setup({ statsPollingIntervalS: 1 });
  queues[2].addChain([{ addr: SCRATCH, len: 64, write: true }]);
  driver.notify(2);
  assert.equal(device.metrics.statsUpdateFails, 1);
});

test('free page reporting drops each reported range and returns the chain', () => {
  const { device, queues, driver, ranges, memory } = setup({ freePageReporting: true });
  memory.view(REGION_B, 8 * PAGE).fill(1);
  const head = queues[2].addChain([{ addr: REGION_B, len: 4 * PAGE, write: true }, { addr: REGION_B + 6 * PAGE, len: 2 * PAGE, write: true }]);
  driver.notify(2);
  assert.deepEqual(ranges, [[REGION_B, 4 * PAGE], [REGION_B + 6 * PAGE, 2 * PAGE]]);
  assert.deepEqual(queues[2].usedSince(0), [{ id: head, len: 0 }]);
  assert.equal(device.metrics.reportFreedBytes, 6 * PAGE);
  assert.equal(memory.view(REGION_B + 4 * PAGE, 2 * PAGE).every((b) => b === 1), true, 'unreported pages kept');
});

test('queues are numbered by the features in use: reporting is queue 2 without stats, 3 without hinting', () => {
  const { queues, driver, ranges } = setup({ statsPollingIntervalS: 1, freePageReporting: true });
  queues[3].addChain([{ addr: REGION_B, len: PAGE, write: true }]);
  driver.notify(3);
  assert.deepEqual(ranges, [[REGION_B, PAGE]]);
  // A driver that declines stats uses index 2 for reporting.
  const declined = setup({ statsPollingIntervalS: 1, freePageReporting: true }, { accept: without(BalloonFeature.STATS_VQ) });
  declined.queues[2].addChain([{ addr: REGION_B, len: PAGE, write: true }]);
  declined.driver.notify(2);
  assert.deepEqual(declined.ranges, [[REGION_B, PAGE]]);
});

test('free page hinting: start, the guest answers with the id, blocks are dropped, STOP with ack makes DONE', () => {
  const { device, queues, driver, put, ranges, line } = setup({ freePageHinting: true });
  assert.deepEqual(device.hintingStatus(), { host_cmd: 0 });
  const before = line.count;
  device.startHinting(true);
  assert.equal(line.count, before + 1, 'config change');
  const id = configU32(driver, ConfigOffset.FREE_PAGE_HINT_CMD_ID);
  assert.equal(id >= 2, true);
  const cmd = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return put(b); };
  // A block before the guest answered the run is not dropped.
  queues[2].addChain([{ addr: REGION_B, len: PAGE, write: true }]);
  driver.notify(2);
  assert.deepEqual(ranges, []);
  queues[2].addChain([{ addr: cmd(id), len: 4 }]);
  queues[2].addChain([{ addr: REGION_B + PAGE, len: 2 * PAGE, write: true }]);
  driver.notify(2);
  assert.deepEqual(ranges, [[REGION_B + PAGE, 2 * PAGE]]);
  assert.deepEqual(device.hintingStatus(), { host_cmd: id, guest_cmd: id });
  queues[2].addChain([{ addr: cmd(HINT_CMD_ID_STOP), len: 4 }]);
  driver.notify(2);
  assert.deepEqual(device.hintingStatus(), { host_cmd: HINT_CMD_ID_DONE, guest_cmd: HINT_CMD_ID_STOP });
  assert.equal(configU32(driver, ConfigOffset.FREE_PAGE_HINT_CMD_ID), HINT_CMD_ID_DONE);
  assert.equal(queues[2].usedIdx, 4);
  assert.equal(device.metrics.hintFreedBytes, 2 * PAGE);
});

test('hinting without acknowledge_on_stop waits for stop; each start uses a new id', () => {
  const { device, driver } = setup({ freePageHinting: true });
  device.startHinting(false);
  const first = configU32(driver, ConfigOffset.FREE_PAGE_HINT_CMD_ID);
  device.startHinting(false);
  assert.equal(configU32(driver, ConfigOffset.FREE_PAGE_HINT_CMD_ID), first + 1);
  device.stopHinting();
  assert.equal(device.hintingStatus().host_cmd, HINT_CMD_ID_DONE);
  const off = setup();
  for (const call of [() => off.device.startHinting(false), () => off.device.stopHinting(), () => off.device.hintingStatus()]) {
    assert.throws(call, /Attempting to use hinting when not enabled\./);
  }
});

test('a flood of chains is handled in slices, one per loop turn', () => {
  const { queues, driver, clock } = setup();
  for (let i = 0; i < CHAINS_PER_TURN + 10; i++) queues[0].addChain([{ addr: SCRATCH, len: 4 }]);
  driver.notify(0);
  assert.equal(queues[0].usedIdx, CHAINS_PER_TURN);
  clock.advance(0);
  assert.equal(queues[0].usedIdx, CHAINS_PER_TURN + 10);
});

test('huge pages: a huge page is dropped only once every small page of it is in the balloon', () => {
  const HUGE = 8 * PAGE; // a small "huge page" so that the test memory holds several
  const { memory, ranges, sendPfns } = setup({}, { hugePageSize: HUGE });
  memory.view(REGION_B, 2 * HUGE).fill(9);
  const first = Array.from({ length: 7 }, (_, i) => B_PFN + i);
  sendPfns(0, [...first, B_PFN, B_PFN + 1]); // duplicates count once
  assert.deepEqual(ranges, []);
  sendPfns(1, [B_PFN + 3]); // the guest takes one back
  sendPfns(0, [B_PFN + 7]);
  assert.deepEqual(ranges, [], 'page 3 is in use again');
  sendPfns(0, [B_PFN + 3]);
  assert.deepEqual(ranges, [[REGION_B, HUGE]]);
  assert.equal(memory.view(REGION_B + HUGE, HUGE).every((b) => b === 9), true, 'the next huge page is untouched');
  // Reported ranges are trimmed to whole huge pages.
  const { ranges: r2, queues: q2, driver: d2 } = setup({ freePageReporting: true }, { hugePageSize: HUGE });
  q2[2].addChain([{ addr: REGION_B + PAGE, len: 2 * HUGE - PAGE, write: true }]);
  d2.notify(2);
  assert.deepEqual(r2, [[REGION_B + HUGE, HUGE]]);
});

test('amount_mib must give a page count that fits in 32 bits', () => {
  assert.equal(pagesFor(16 * 1024 * 1024 - 1), (16 * 1024 * 1024 - 1) * 256);
  assert.throws(() => pagesFor(33554432), /Amount of pages requested cannot fit in `u32`\./);
});

test('a driver reset drops the held stats buffer and the poll timer; activation starts them again', () => {
  const { device, driver, clock, queues, put } = setup({ statsPollingIntervalS: 1 });
  const b = encodeStats([[4, 5n]]);
  queues[2].addChain([{ addr: put(b), len: b.length }]);
  driver.notify(2);
  driver.write(MmioReg.STATUS, 0);
  assert.equal(clock.pending, 0);
  assert.equal(device.isActivated, false);
  clock.advance(5000);
  assert.equal(queues[2].usedIdx, 0, 'nothing written after the reset');
});

test('a stats buffer offered and kicked before DRIVER_OK (as Linux does) is read at activation', () => {
  const memory = testMemory();
  const clock = new FakeClock();
  const device = new VirtioBalloon({ ...DEFAULTS, statsPollingIntervalS: 1, discard: () => 0, timers: clock });
  const transport = new MmioTransport(device, memory, new SpyLine(), { name: 'virtio-balloon', log: new RecordingLog() });
  const driver = new MockMmioDriver(transport);
  const queues = [0, 1, 2].map((i) => new MockQueue(memory, REGION_A + 0x2000 * i, 256));
  assert.ok(driver.negotiate());
  queues.forEach((q, i) => driver.setupQueue(i, q));
  const stats = encodeStats([[4, 123n]]);
  memory.write(SCRATCH, stats);
  const head = queues[2].addChain([{ addr: SCRATCH, len: stats.length }]);
  driver.notify(2);
  driver.addStatus(Status.DRIVER_OK);
  assert.equal(device.statistics().free_memory, 123);
  clock.advance(1000);
  assert.deepEqual(queues[2].usedSince(0), [{ id: head, len: 0 }]);
});

test('big page-number chains: at most MAX_PFNS_PER_CHAIN read from one, PAGES_PER_TURN per loop turn', () => {
  const { queues, driver, clock, ranges, memory } = setup();
  // Chains of 16,384 page numbers (all of REGION_C), every one the same page of REGION_B.
  const same = memory.view(REGION_C, 0x10000);
  for (let i = 0; i < same.length; i += 4) same.writeUInt32LE(B_PFN, i);
  const perTurn = PAGES_PER_TURN / MAX_PFNS_PER_CHAIN;
  for (let i = 0; i < perTurn + 1; i++) queues[0].addChain([{ addr: REGION_C, len: 0x10000 }]);
  driver.notify(0);
  assert.equal(queues[0].usedIdx, perTurn);
  assert.equal(ranges.length, perTurn, 'a repeated page is one madvise per chain');
  clock.advance(0);
  assert.equal(queues[0].usedIdx, perTurn + 1);
});
