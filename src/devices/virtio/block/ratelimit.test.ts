import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { FakeClock } from '../../../ratelimit/fake-clock';
import { MmioTransport } from '../mmio-transport';
import { Interrupt, MmioReg } from '../constants';
import { MockMmioDriver } from '../testing/mock-mmio-driver';
import { MockQueue } from '../testing/mock-queue';
import { REGION_A, SpyLine, testMemory } from '../testing/harness';
import { BlockRig, tempDisk } from './block-harness';
import { BlkStatus, RequestType } from './constants';
import { DriveFileError } from './disk';
import { VirtioBlock } from './device';

const { IN, OUT } = RequestType;
const bucket = (size: number, refillTimeMs: number, oneTimeBurst = 0) => ({ size, refillTimeMs, oneTimeBurst });

test('ops limit: the third request waits for the limiter, keeps its place, and completes when the timer fires', () => {
  const clock = new FakeClock();
  const rig = new BlockRig({ driveId: 'd', path: tempDisk(8192), rateLimiter: { ops: bucket(2, 1000) }, clock, timers: clock });
  const reqs = [0n, 1n, 2n, 3n].map((s) => rig.request(IN, s, 512));
  rig.notify();
  assert.deepEqual(rig.used.map((u) => u.id), [reqs[0].head, reqs[1].head]);
  assert.equal(rig.device.metrics.rateLimiterThrottled, 1);
  assert.ok(rig.device.limiter.blocked);
  rig.notify(); // the guest kicks again while blocked: nothing moves, nothing double-counts
  assert.equal(rig.used.length, 2);
  assert.equal(rig.device.metrics.rateLimiterThrottled, 1);
  clock.advance(499);
  assert.equal(rig.used.length, 2, '1 op refills in 500 ms');
  clock.advance(1);
  assert.deepEqual(rig.used.map((u) => u.id), [reqs[0].head, reqs[1].head, reqs[2].head]);
  clock.advance(500);
  assert.equal(rig.used.length, 4);
  assert.ok(reqs.every((r) => rig.status(r) === BlkStatus.OK));
  assert.equal(rig.interrupt.calls, 3, 'the first notification, then each limiter wake-up signals the guest itself');
});

test('bandwidth limit: bytes of data count, a request larger than the bucket goes once and then blocks for the debt', () => {
  const clock = new FakeClock();
  const rig = new BlockRig({ driveId: 'd', path: tempDisk(64 * 1024), rateLimiter: { bandwidth: bucket(1024, 100) }, clock, timers: clock });
  const big = rig.request(OUT, 0n, 4096, { data: Buffer.alloc(4096, 9) });
  const next = rig.request(IN, 0n, 512);
  rig.notify();
  assert.deepEqual(rig.used.map((u) => u.id), [big.head], '4096 > 1024: let through into debt');
  clock.advance(349);
  assert.equal(rig.used.length, 1, 'the debt of 3072 bytes takes 300 ms, then 512 bytes 50 ms more');
  clock.advance(1);
  assert.deepEqual(rig.used.map((u) => u.id), [big.head, next.head]);
});

test('PATCH of the rate limiter: removing the bucket releases a held request on the next timer turn', () => {
  const clock = new FakeClock();
  const rig = new BlockRig({ driveId: 'd', path: tempDisk(8192), rateLimiter: { ops: bucket(1, 10_000) }, clock, timers: clock });
  rig.request(IN, 0n, 512);
  rig.request(IN, 1n, 512);
  rig.notify();
  assert.equal(rig.used.length, 1);
  rig.device.update({ rateLimiter: { ops: bucket(0, 0) } });
  clock.advance(0);
  assert.equal(rig.used.length, 2);
  assert.equal(rig.device.metrics.updates, 1);
});

test('PATCH of the backing file: new capacity in the config, a config-change interrupt, I/O goes to the new file', () => {
  const memory = testMemory();
  const first = tempDisk(4096, () => 1);
  const second = tempDisk(16384, () => 2);
  const device = new VirtioBlock({ driveId: 'd', path: first });
  const line = new SpyLine();
  const transport = new MmioTransport(device, memory, line);
  const driver = new MockMmioDriver(transport);
  driver.init([new MockQueue(memory, REGION_A + 0x1000, 16)]);
  const generation = driver.read(MmioReg.CONFIG_GENERATION);
  assert.equal(driver.read(MmioReg.CONFIG), 8, '4096 bytes = 8 sectors');
  device.update({ path: second });
  assert.equal(driver.read(MmioReg.CONFIG), 32);
  assert.equal(driver.read(MmioReg.CONFIG_GENERATION), generation + 1);
  assert.equal(driver.ackInterrupt(), Interrupt.CONFIG_CHANGE);
  assert.equal(line.count, 1);
  // The same path again re-reads its size (the file grew on the host).
  fs.truncateSync(second, 32768);
  device.update({ path: second });
  assert.equal(driver.read(MmioReg.CONFIG), 64);
  assert.equal(device.path, second);
});

test('PATCH to a file that cannot be opened fails and changes nothing', () => {
  const file = tempDisk(4096);
  const rig = new BlockRig({ driveId: 'd', path: file });
  assert.throws(() => rig.device.update({ path: '/nonexistent/other.img', rateLimiter: { ops: bucket(1, 1000) } }), DriveFileError);
  assert.equal(rig.device.path, file);
  assert.ok(rig.device.limiter.unlimited, 'the rate limiter in the same PATCH is not applied either');
  assert.equal(rig.device.metrics.updateFails, 1);
  const r = rig.request(IN, 0n, 512);
  rig.notify();
  assert.equal(rig.status(r), BlkStatus.OK);
});
