/**
 * A balloon saved mid-stats (the driver's stats buffer held until the next poll, a target set,
 * pages given back) and restored onto a fresh device over the same guest memory, through the
 * snapshot file's JSON encoding: the target, actual pages and statistics carry over, the held
 * buffer is held again, and the re-armed poll returns it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../ratelimit/fake-clock';
import { fromJsonValue, toJsonValue } from '../../../snapshot/plain-data';
import { ConfigOffset } from './constants';
import { MmioReg, Status } from '../constants';
import { MmioTransport, TransportState } from '../mmio-transport';
import { MockMmioDriver } from '../testing/mock-mmio-driver';
import { MockQueue } from '../testing/mock-queue';
import { RecordingLog, REGION_A, REGION_C, SpyLine, testMemory } from '../testing/harness';
import { BalloonSavedState, BalloonSettings, VirtioBalloon } from './device';
import { encodeStats } from './stats';

const SETTINGS: BalloonSettings = { amountMib: 4, deflateOnOom: false, statsPollingIntervalS: 3, freePageHinting: false, freePageReporting: false };
const discard = (b: Buffer) => { b.fill(0); return 0; };

function throughFile<T>(value: T): T {
  return fromJsonValue(JSON.parse(JSON.stringify(toJsonValue(value)))) as T;
}

test('a balloon saved while it holds the stats buffer holds it again after a restore, and the poll returns it', () => {
  const memory = testMemory();
  const log = new RecordingLog();
  const clock = new FakeClock();
  const device = new VirtioBalloon({ ...SETTINGS, discard, timers: clock, log });
  const transport = new MmioTransport(device, memory, new SpyLine(), { name: 'virtio-balloon', log });
  const driver = new MockMmioDriver(transport);
  const queues = [0, 1, 2].map((i) => new MockQueue(memory, REGION_A + 0x2000 * i, 256));
  assert.equal(driver.init(queues) & Status.DRIVER_OK, Status.DRIVER_OK);
  device.setStatsInterval(5); // PATCHed after boot (it asks for stats at once: none is held yet)
  const stats = encodeStats([[4, 1234n], [5, 8192n]]);
  memory.write(REGION_C, stats);
  const head = queues[2].addChain([{ addr: REGION_C, len: stats.length }]);
  driver.notify(2);
  assert.equal(queues[2].usedIdx, 0, 'held until the next poll');
  driver.write(MmioReg.CONFIG + ConfigOffset.ACTUAL, 300);
  device.setTarget(6);
  clock.advance(4000);
  assert.equal(queues[2].usedIdx, 0, 'the poll is 5 s away');

  const transportState = throughFile(transport.saveState(device.heldChains()));
  const deviceState = throughFile(device.saveState());
  assert.deepEqual(device.heldChains(), [0, 0, 1]);
  device.dispose();

  const clock2 = new FakeClock();
  // The configuration a restore makes the device from is the boot's (amount 4, interval 3).
  const fresh = new VirtioBalloon({ ...SETTINGS, discard, timers: clock2, log });
  const restored = new MmioTransport(fresh, memory, new SpyLine(), { name: 'virtio-balloon', log });
  fresh.restoreState(deviceState);
  restored.restoreState(transportState as TransportState);
  const after = new MockMmioDriver(restored);
  assert.equal(after.read(MmioReg.STATUS) & Status.DRIVER_OK, Status.DRIVER_OK);
  assert.equal(after.read(MmioReg.CONFIG + ConfigOffset.NUM_PAGES), 6 * 256, 'the PATCHed target');
  assert.equal(after.read(MmioReg.CONFIG + ConfigOffset.ACTUAL), 300);
  const s = fresh.statistics();
  assert.deepEqual([s.free_memory, s.total_memory, s.target_mib, s.actual_pages], [1234, 8192, 6, 300]);
  assert.equal(fresh.config.statsPollingIntervalS, 5);
  assert.deepEqual(fresh.heldChains(), [0, 0, 1], 'the stats buffer is held again');
  assert.equal(queues[2].usedIdx, 0);
  clock2.advance(4999);
  assert.equal(queues[2].usedIdx, 0, 'the timer was re-armed with the saved interval');
  clock2.advance(1);
  assert.deepEqual(queues[2].usedSince(0), [{ id: head, len: 0 }], 'returned once, by the restored device');
  fresh.dispose();
});

test('a saved state whose statistics switch differs from the configured device is refused', () => {
  const fresh = new VirtioBalloon({ ...SETTINGS, statsPollingIntervalS: 0, discard, timers: new FakeClock() });
  const saved: BalloonSavedState = { amountMib: 1, statsPollingIntervalS: 2, actualPages: 0, hintCmdId: 0, ackOnStop: false, nextHintCmd: 2, stats: {} };
  assert.throws(() => fresh.restoreState(saved), (e: Error & { code?: string }) => e.code === 'ESNAPSHOTDEVICE' && /statistics interval/.test(e.message));
});
