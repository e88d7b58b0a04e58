import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isUnlimitedBucket, parseRateLimiter, rateLimiterToJson } from './rate-limiter';
import { ConfigError } from './validate';

const W = 'drives[0].rate_limiter';

test('a full rate limiter parses, with one_time_burst defaulting to 0', () => {
  const c = parseRateLimiter(
    { bandwidth: { size: 1048576, one_time_burst: 4096, refill_time: 1000 }, ops: { size: 100, refill_time: 1000 } },
    W,
  );
  assert.deepEqual(c, {
    bandwidth: { size: 1048576, oneTimeBurst: 4096, refillTimeMs: 1000 },
    ops: { size: 100, oneTimeBurst: 0, refillTimeMs: 1000 },
  });
});

test('absent or null means no rate limiter; absent or null buckets are left out', () => {
  assert.equal(parseRateLimiter(undefined, W), undefined);
  assert.equal(parseRateLimiter(null, W), undefined);
  assert.deepEqual(parseRateLimiter({}, W), {});
  assert.deepEqual(parseRateLimiter({ bandwidth: null, ops: { size: 1, refill_time: 1 } }, W), {
    ops: { size: 1, oneTimeBurst: 0, refillTimeMs: 1 },
  });
});

test('zeros are kept as given: size 0 or refill_time 0 is an unlimited bucket', () => {
  const c = parseRateLimiter({ bandwidth: { size: 0, refill_time: 100 }, ops: { size: 10, refill_time: 0 } }, W);
  assert.deepEqual(c?.bandwidth, { size: 0, oneTimeBurst: 0, refillTimeMs: 100 });
  assert.equal(isUnlimitedBucket(c!.bandwidth!), true);
  assert.equal(isUnlimitedBucket(c!.ops!), true);
  assert.equal(isUnlimitedBucket({ size: 1, oneTimeBurst: 0, refillTimeMs: 1 }), false);
});

test('validation errors name the place and the field', () => {
  const bad: Array<[unknown, RegExp]> = [
    [[], /^drives\[0\]\.rate_limiter: expected a JSON object\.$/],
    [{ bandwidth: 5 }, /^drives\[0\]\.rate_limiter\.bandwidth: expected a JSON object\.$/],
    [{ bytes: {} }, /rate_limiter: unknown field `bytes`, expected one of `bandwidth`, `ops`\./],
    [{ ops: { size: 1, refill_time: 1, burst: 2 } }, /rate_limiter\.ops: unknown field `burst`/],
    [{ ops: { refill_time: 1 } }, /rate_limiter\.ops: missing field `size`\./],
    [{ bandwidth: { size: 1 } }, /rate_limiter\.bandwidth: missing field `refill_time`\./],
    [{ bandwidth: { size: -1, refill_time: 1 } }, /field `size` is -1, but must be between 0 and/],
    [{ bandwidth: { size: 1.5, refill_time: 1 } }, /field `size` must be an integer\./],
    [{ bandwidth: { size: '1', refill_time: 1 } }, /field `size` must be an integer\./],
    [{ bandwidth: { size: 1, refill_time: 1, one_time_burst: -3 } }, /field `one_time_burst` is -3/],
    [{ ops: { size: 1, refill_time: 2 ** 53 } }, /field `refill_time` must be an integer\./],
  ];
  for (const [value, message] of bad) {
    assert.throws(() => parseRateLimiter(value, W), (e: unknown) => e instanceof ConfigError && message.test(e.message), JSON.stringify(value));
  }
});

test('rateLimiterToJson writes the API form and parses back to the same config', () => {
  const c = { bandwidth: { size: 10, oneTimeBurst: 0, refillTimeMs: 100 } };
  const json = rateLimiterToJson(c);
  assert.deepEqual(json, { bandwidth: { size: 10, one_time_burst: null, refill_time: 100 }, ops: null }, 'Firecracker echoes absent parts as null');
  assert.deepEqual(parseRateLimiter(json, W), c);
  assert.deepEqual(rateLimiterToJson({}), { bandwidth: null, ops: null });
  const burst = { ops: { size: 1, oneTimeBurst: 5, refillTimeMs: 2 } };
  assert.deepEqual(parseRateLimiter(rateLimiterToJson(burst), W), burst);
});
