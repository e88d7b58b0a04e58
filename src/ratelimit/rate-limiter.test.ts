import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimiter, bucketUpdateOf } from './rate-limiter';
import { FakeClock } from './fake-clock';
import { nodeTimers, type NodeTimerHandle } from './clock';
import type { RateLimiterConfig } from '../config/rate-limiter';

/** A limiter on a fake clock that records when onUnblocked ran (in fake ms). */
function setup(config: RateLimiterConfig) {
  const clock = new FakeClock();
  const unblockedAt: number[] = [];
  const limiter = new RateLimiter(config, { clock, timers: clock, onUnblocked: () => unblockedAt.push(clock.nowMs()) });
  return { clock, limiter, unblockedAt };
}

const bw = (size: number, refillTimeMs: number, oneTimeBurst = 0) => ({ bandwidth: { size, oneTimeBurst, refillTimeMs } });

test('no buckets, or size 0 / refill_time 0, means no limit', () => {
  for (const config of [{}, bw(0, 100), bw(1000, 0), { ops: { size: 0, oneTimeBurst: 5, refillTimeMs: 0 } }]) {
    const { limiter, clock } = setup(config);
    assert.equal(limiter.unlimited, true);
    assert.equal(limiter.consume(Number.MAX_SAFE_INTEGER, 'bytes'), true);
    assert.equal(limiter.consume(Number.MAX_SAFE_INTEGER, 'ops'), true);
    assert.equal(limiter.blocked, false);
    assert.equal(clock.pending, 0);
    assert.equal(limiter.budget('bytes'), undefined);
  }
});

test('a failed consume blocks, and the timer unblocks at the exact time the tokens are there', () => {
  const { limiter, clock, unblockedAt } = setup(bw(1000, 1000)); // 1 byte per ms
  assert.equal(limiter.consume(1000, 'bytes'), true);
  assert.equal(limiter.consume(100, 'bytes'), false);
  assert.equal(limiter.blocked, true);
  assert.equal(limiter.throttledEvents, 1);
  clock.advance(99);
  assert.deepEqual(unblockedAt, []);
  assert.equal(limiter.blocked, true);
  clock.advance(1);
  assert.deepEqual(unblockedAt, [100]);
  assert.equal(limiter.blocked, false);
  assert.equal(limiter.unblockEvents, 1);
  assert.equal(limiter.consume(100, 'bytes'), true);
  assert.equal(limiter.budget('bytes'), 0);
});

test('while blocked every consume fails, even one that would fit, so requests stay in order', () => {
  const { limiter, clock } = setup({ ...bw(1000, 1000), ops: { size: 10, oneTimeBurst: 0, refillTimeMs: 1000 } });
  assert.equal(limiter.consume(900, 'bytes'), true);
  assert.equal(limiter.consume(200, 'bytes'), false); // 100 short: 100 ms
  assert.equal(limiter.consume(50, 'bytes'), false, 'would fit, but the 200 is waiting');
  assert.equal(limiter.consume(1, 'ops'), false);
  assert.equal(limiter.throttledEvents, 3);
  assert.equal(limiter.budget('ops'), 10, 'refused consumes take nothing');
  clock.advance(100);
  assert.equal(limiter.consume(200, 'bytes'), true);
});

test('a timer rounds up to whole milliseconds and never fires early', () => {
  const { limiter, clock, unblockedAt } = setup(bw(3, 1000)); // 1 token per 333.33 ms
  limiter.consume(3, 'bytes');
  assert.equal(limiter.consume(1, 'bytes'), false);
  clock.advance(333);
  assert.deepEqual(unblockedAt, []);
  clock.advance(1);
  assert.deepEqual(unblockedAt, [334]);
  assert.equal(limiter.consume(1, 'bytes'), true);
});

test('a request larger than size goes through once, then blocks until repaid', () => {
  const { limiter, clock, unblockedAt } = setup(bw(1000, 1000));
  assert.equal(limiter.consume(2500, 'bytes'), true);
  assert.equal(limiter.overdraftEvents, 1);
  assert.equal(limiter.blocked, true);
  assert.equal(limiter.budget('bytes'), -1500);
  assert.equal(limiter.consume(1, 'bytes'), false);
  clock.advance(1499);
  assert.deepEqual(unblockedAt, []);
  clock.advance(1);
  assert.deepEqual(unblockedAt, [1500]);
  assert.equal(limiter.budget('bytes'), 0, 'the debt is repaid, nothing more');
  assert.equal(limiter.consume(10, 'bytes'), false);
  clock.advance(10);
  assert.deepEqual(unblockedAt, [1500, 1510]);
});

test('the one-time burst goes first and does not come back', () => {
  const { limiter, clock } = setup(bw(100, 1000, 500));
  assert.equal(limiter.consume(600, 'bytes'), true);
  assert.equal(limiter.oneTimeBurst('bytes'), 0);
  assert.equal(limiter.budget('bytes'), 0);
  assert.equal(limiter.blocked, false);
  clock.advance(10_000);
  assert.equal(limiter.budget('bytes'), 100);
  assert.equal(limiter.consume(101, 'bytes'), true, 'over size: an overdraft, not a burst');
  assert.equal(limiter.overdraftEvents, 1);
});

test('manual replenish returns tokens without unblocking', () => {
  const { limiter, clock, unblockedAt } = setup({ ops: { size: 10, oneTimeBurst: 0, refillTimeMs: 1000 }, ...bw(100, 1000) });
  assert.equal(limiter.consume(1, 'ops'), true);
  assert.equal(limiter.consume(100, 'bytes'), true);
  assert.equal(limiter.consume(1, 'ops'), true);
  assert.equal(limiter.consume(10, 'bytes'), false); // the device gives its op back
  limiter.manualReplenish(1, 'ops');
  assert.equal(limiter.budget('ops'), 9);
  assert.equal(limiter.blocked, true);
  limiter.manualReplenish(10, 'bytes');
  assert.equal(limiter.blocked, true, 'the timer still decides');
  clock.advance(100);
  assert.deepEqual(unblockedAt, [100]);
  limiter.manualReplenish(5, 'bytes');
  assert.equal(limiter.budget('bytes'), 25);
  limiter.manualReplenish(1000, 'bytes');
  assert.equal(limiter.budget('bytes'), 100, 'capped at size');
});

test('update: absent keeps, size 0 or refill_time 0 removes, anything else replaces with a full bucket', () => {
  assert.deepEqual(bucketUpdateOf(undefined), { kind: 'keep' });
  assert.deepEqual(bucketUpdateOf({ size: 0, oneTimeBurst: 0, refillTimeMs: 100 }), { kind: 'disable' });
  assert.deepEqual(bucketUpdateOf({ size: 100, oneTimeBurst: 0, refillTimeMs: 0 }), { kind: 'disable' });
  const { limiter } = setup({ ...bw(1000, 1000), ops: { size: 10, oneTimeBurst: 0, refillTimeMs: 1000 } });
  limiter.consume(600, 'bytes');
  limiter.update({ ops: { size: 0, oneTimeBurst: 0, refillTimeMs: 0 } });
  assert.equal(limiter.budget('bytes'), 400, 'bandwidth kept, with its state');
  assert.equal(limiter.budget('ops'), undefined, 'ops removed');
  limiter.update({ bandwidth: { size: 50, oneTimeBurst: 7, refillTimeMs: 10 } });
  assert.equal(limiter.budget('bytes'), 50, 'replaced, and full');
  assert.equal(limiter.oneTimeBurst('bytes'), 7);
  limiter.update({});
  assert.deepEqual(limiter.toConfig(), { bandwidth: { size: 50, oneTimeBurst: 7, refillTimeMs: 10 } });
  limiter.update({ ops: { size: 5, oneTimeBurst: 0, refillTimeMs: 1000 } });
  assert.equal(limiter.budget('ops'), 5, 'a limit can be added later');
});

test('an update while blocked unblocks on the next timer turn, so new limits apply at once', () => {
  const { limiter, clock, unblockedAt } = setup(bw(100, 10_000));
  limiter.consume(100, 'bytes');
  assert.equal(limiter.consume(100, 'bytes'), false); // 10 s to wait under the old limit
  limiter.update({});
  clock.advance(0);
  assert.deepEqual(unblockedAt, [], 'an update that keeps everything changes nothing');
  limiter.update({ bandwidth: { size: 0, oneTimeBurst: 0, refillTimeMs: 0 } });
  assert.equal(clock.pending, 1, 'one timer, not two');
  clock.advance(0);
  assert.deepEqual(unblockedAt, [0]);
  assert.equal(limiter.consume(100, 'bytes'), true);
  clock.advance(20_000);
  assert.deepEqual(unblockedAt, [0], 'the old timer was cancelled');
});

test('dispose cancels a pending timer', () => {
  const { limiter, clock, unblockedAt } = setup(bw(10, 1000));
  limiter.consume(10, 'bytes');
  limiter.consume(10, 'bytes');
  limiter.dispose();
  clock.advance(5000);
  assert.deepEqual(unblockedAt, []);
  assert.equal(limiter.blocked, false);
});

test('saved bucket levels come back on a fresh limiter with the same limits, refilling from the restore on', () => {
  const { limiter, clock } = setup({ ...bw(1000, 1000, 300), ops: { size: 5, oneTimeBurst: 0, refillTimeMs: 1000 } });
  assert.equal(limiter.consume(900, 'bytes'), true); // 300 burst + 600 budget
  assert.equal(limiter.consume(3, 'ops'), true);
  clock.advance(100); // +100 bytes, +0.5 op
  const saved = limiter.saveState();

  const later = new FakeClock();
  later.advance(50_000); // another process's clock: only the levels carry over
  const fresh = new RateLimiter({ ...bw(1000, 1000, 300), ops: { size: 5, oneTimeBurst: 0, refillTimeMs: 1000 } }, { clock: later, timers: later });
  fresh.restoreState(saved);
  assert.equal(fresh.budget('bytes'), 500);
  assert.equal(fresh.oneTimeBurst('bytes'), 0);
  assert.equal(fresh.budget('ops'), 2);
  later.advance(500);
  assert.equal(fresh.budget('bytes'), 1000);

  const other = new RateLimiter(bw(2000, 1000), { clock: later, timers: later });
  other.restoreState(saved);
  assert.equal(other.budget('bytes'), 2000, 'a bucket with other limits starts full');
  assert.equal(other.budget('ops'), undefined);
});

test('the real clock and Node timers drive a limiter end to end', async () => {
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  const start = process.hrtime.bigint();
  const limiter = new RateLimiter(bw(1000, 20), { onUnblocked: resolve });
  assert.equal(limiter.consume(1000, 'bytes'), true);
  assert.equal(limiter.consume(500, 'bytes'), false); // about 10 ms
  const keepAlive = setTimeout(() => {}, 1000); // the limiter's own timer is unref'd
  await done;
  clearTimeout(keepAlive);
  assert.ok(process.hrtime.bigint() - start >= 10_000_000n, 'not before the 10 ms the tokens need');
  assert.equal(limiter.consume(500, 'bytes'), true);
});

test('Node timers are unref\'d so a waiting limiter never keeps the process alive', () => {
  const handle = nodeTimers.setTimeout(() => {}, 60_000) as NodeTimerHandle;
  assert.equal(handle.timeout.hasRef(), false);
  nodeTimers.clearTimeout(handle);
});

/** Spins to 0.8 ms into a millisecond, where libuv's whole-ms timers fire earliest. */
function waitUntilLateInAMillisecond(): void {
  while (process.hrtime.bigint() % 1_000_000n < 800_000n);
}

test('Node timers never fire before their delay on the monotonic clock', async () => {
  // libuv counts timers in whole milliseconds of its loop time, so a plain setTimeout(f, 2)
  // armed 0.8 ms into a millisecond can fire 1.2 ms later if the loop is awake then (here a
  // setImmediate chain keeps it awake, as a busy device's events would).
  const early: string[] = [];
  for (let round = 0; round < 20; round++) {
    waitUntilLateInAMillisecond();
    const start = process.hrtime.bigint();
    let awake = true;
    const keepAwake = (): void => void (awake && setImmediate(keepAwake));
    keepAwake();
    const elapsedNs = await new Promise<bigint>((r) =>
      nodeTimers.setTimeout(() => r(process.hrtime.bigint() - start), 2),
    );
    awake = false;
    if (elapsedNs < 2_000_000n) early.push(`fired after ${elapsedNs} ns`);
  }
  assert.deepEqual(early, []);
});

test('a Node timer cleared after an early wake-up re-armed it does not fire', async () => {
  let rearmed = 0;
  let fired = 0;
  for (let round = 0; round < 20 && rearmed === 0; round++) {
    waitUntilLateInAMillisecond();
    const handle = nodeTimers.setTimeout(() => fired++, 2) as NodeTimerHandle;
    const first = handle.timeout;
    const deadline = process.hrtime.bigint() + 3_000_000n;
    // Poll every loop turn: clear the moment the early wake-up has re-armed the timer.
    await new Promise<void>((resolve) => {
      const poll = (): void => {
        if (handle.timeout !== first) {
          rearmed++;
          nodeTimers.clearTimeout(handle);
        }
        if (handle.timeout !== first || process.hrtime.bigint() > deadline) resolve();
        else setImmediate(poll);
      };
      poll();
    });
    if (rearmed === 0) nodeTimers.clearTimeout(handle); // fired on time or not yet: start over
    await new Promise((r) => setTimeout(r, 5));
    if (rearmed === 0) fired = 0;
  }
  assert.ok(rearmed > 0, 'no round woke early; the re-arm path was not exercised');
  assert.equal(fired, 0);
});
