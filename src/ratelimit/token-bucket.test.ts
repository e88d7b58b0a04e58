import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from './token-bucket';

const ms = (n: number): bigint => BigInt(n) * 1_000_000n;

test('a bucket starts full and refills in proportion to elapsed time', () => {
  const b = new TokenBucket(1000, 0, 100, ms(0));
  assert.equal(b.budget(ms(0)), 1000);
  assert.deepEqual(b.reduce(1000, ms(0)), { kind: 'ok' });
  assert.equal(b.budget(ms(0)), 0);
  assert.equal(b.budget(ms(50)), 500, 'half the refill time gives half the size');
  assert.equal(b.budget(ms(75)), 750);
  assert.equal(b.budget(ms(100)), 1000);
});

test('refill is capped at size, so an idle full bucket banks nothing', () => {
  const b = new TokenBucket(1000, 0, 100, ms(0));
  b.reduce(600, ms(0));
  assert.equal(b.budget(ms(500)), 1000, 'not 400 + 5000');
  assert.deepEqual(b.reduce(1000, ms(500)), { kind: 'ok' });
  assert.deepEqual(b.reduce(1, ms(500)).kind, 'short');
  // A consume while full must not let the skipped refill count later (no lazy refill).
  const c = new TokenBucket(100, 0, 100, ms(0));
  c.reduce(60, ms(50)); // full at 50 ms (capped), 40 left
  assert.equal(c.budget(ms(60)), 50, '40 + 10 ms of refill, not 40 + 60');
});

test('refill is exact across many small steps (no rounding drift)', () => {
  const b = new TokenBucket(3, 0, 1000, ms(0)); // 1 token per 333.3 ms
  b.reduce(3, ms(0));
  // Each 1 ms step adds 0.003 token: a per-step integer division would add nothing, ever.
  for (let i = 1; i <= 999; i++) b.budget(ms(i));
  assert.equal(b.budget(ms(999)), 2, '2.997 tokens round down');
  assert.equal(b.budget(ms(1000)), 3);
});

test('the one-time burst is spent first and never refilled', () => {
  const b = new TokenBucket(100, 50, 100, ms(0));
  assert.deepEqual(b.reduce(30, ms(0)), { kind: 'ok' });
  assert.equal(b.oneTimeBurst, 20);
  assert.equal(b.budget(ms(0)), 100, 'budget untouched while the burst lasts');
  assert.deepEqual(b.reduce(30, ms(0)), { kind: 'ok' });
  assert.equal(b.oneTimeBurst, 0);
  assert.equal(b.budget(ms(0)), 90, '20 from the burst, 10 from the budget');
  assert.equal(b.budget(ms(10_000)), 100);
  assert.equal(b.oneTimeBurst, 0, 'the burst does not come back');
  // Burst plus budget together: 150 fits in a fresh bucket, 151 does not.
  assert.deepEqual(new TokenBucket(100, 50, 100, ms(0)).reduce(150, ms(0)), { kind: 'ok' });
  assert.equal(new TokenBucket(100, 50, 100, ms(0)).reduce(151, ms(0)).kind, 'overdrawn');
});

test('a request that does not fit takes nothing and reports the exact wait', () => {
  const b = new TokenBucket(100, 10, 1000, ms(0)); // 1 token per 10 ms
  assert.deepEqual(b.reduce(100, ms(0)), { kind: 'ok' }); // burst 10 -> 0, budget 100 -> 10
  assert.deepEqual(b.reduce(50, ms(0)), { kind: 'short', waitNs: ms(400) }, '40 tokens at 10 ms each');
  assert.equal(b.budget(ms(0)), 10, 'nothing was taken');
  assert.deepEqual(b.reduce(50, ms(399)), { kind: 'short', waitNs: ms(1) }, '0.1 token short: 1 ms');
  assert.deepEqual(b.reduce(50, ms(400)), { kind: 'ok' });
  assert.equal(b.budget(ms(400)), 0);
});

test('a request larger than size goes through once, leaving a debt to repay', () => {
  const b = new TokenBucket(1000, 0, 1000, ms(0)); // 1 token per ms
  assert.deepEqual(b.reduce(2500, ms(0)), { kind: 'overdrawn', debtNs: ms(1500) });
  assert.equal(b.budget(ms(0)), -1500);
  assert.equal(b.budget(ms(1000)), -500);
  assert.equal(b.budget(ms(1500)), 0, 'repaid exactly, nothing extra banked');
  assert.equal(b.reduce(1, ms(1500)).kind, 'short');
  // From a partly empty bucket the debt is the whole shortfall.
  const c = new TokenBucket(1000, 0, 1000, ms(0));
  c.reduce(400, ms(0));
  assert.deepEqual(c.reduce(1200, ms(0)), { kind: 'overdrawn', debtNs: ms(600) });
  assert.equal(c.budget(ms(0)), -600);
});

test('manual replenish undoes a consume: budget first, then the burst', () => {
  const b = new TokenBucket(100, 5, 1000, ms(0));
  b.reduce(10, ms(0)); // burst 5 -> 0, budget 100 -> 95
  b.replenish(10, ms(0));
  assert.equal(b.budget(ms(0)), 100);
  assert.equal(b.oneTimeBurst, 5, 'the overflow went back to the burst');
  b.replenish(100, ms(0));
  assert.equal(b.budget(ms(0)), 100, 'capped at size');
  assert.equal(b.oneTimeBurst, 5, 'capped at the initial burst');
  b.reduce(5, ms(0));
  b.reduce(50, ms(0));
  b.replenish(20, ms(0));
  assert.equal(b.budget(ms(0)), 70);
  assert.equal(b.oneTimeBurst, 0);
});

test('size or refill time of 0 is not a bucket (the limiter reads it as no limit)', () => {
  assert.throws(() => new TokenBucket(0, 0, 100, 0n), RangeError);
  assert.throws(() => new TokenBucket(100, 0, 0, 0n), RangeError);
});
