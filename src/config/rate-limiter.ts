/**
 * The JSON form of a rate limiter (`rate_limiter` on drives and network interfaces, in the API
 * and in the config file). Parsing keeps the numbers as given, zeros included: a bucket with
 * `size` 0 or `refill_time` 0 means "no limit" at creation and "remove this limit" in a PATCH,
 * and that reading belongs to src/ratelimit, which needs to tell it apart from an absent bucket.
 */
import * as wire from '../api/wire/definitions';
import { decode } from './decode';

export interface TokenBucketConfig {
  /** Capacity in tokens (bytes or operations). */
  size: number;
  /** Extra tokens spent before the regular budget, never refilled. 0 when not given. */
  oneTimeBurst: number;
  /** Milliseconds to refill from empty to `size`. */
  refillTimeMs: number;
}

export interface RateLimiterConfig {
  /** Bytes. Absent: no bandwidth limit (or, in an update, keep the current one). */
  bandwidth?: TokenBucketConfig;
  /** Operations. Absent: as for bandwidth. */
  ops?: TokenBucketConfig;
}

/**
 * Parses `value` (where names it in errors, e.g. `drives[0].rate_limiter`). Absent or null gives
 * undefined; serde reads a null `Option` field as absent, and so do we, in both places.
 */
export function parseRateLimiter(value: unknown, where: string): RateLimiterConfig | undefined {
  if (value === undefined || value === null) return undefined;
  return rateLimiterFromWire(decode(wire.RateLimiter, value, where));
}

/** The config form of an already decoded limiter (null or absent: none). */
export function rateLimiterFromWire(w: wire.RateLimiter | null | undefined): RateLimiterConfig | undefined {
  if (w == null) return undefined;
  const config: RateLimiterConfig = {};
  if (w.bandwidth != null) config.bandwidth = bucketFromWire(w.bandwidth);
  if (w.ops != null) config.ops = bucketFromWire(w.ops);
  return config;
}

export function bucketFromWire(w: wire.TokenBucket): TokenBucketConfig {
  return { size: w.size, oneTimeBurst: w.one_time_burst ?? 0, refillTimeMs: w.refill_time };
}

/** True when the bucket limits nothing (Firecracker: size or refill_time of 0). */
export function isUnlimitedBucket(b: TokenBucketConfig): boolean {
  return b.size === 0 || b.refillTimeMs === 0;
}

/**
 * The API's JSON form, as Firecracker echoes it: an absent bucket is null and a burst of 0 (none
 * given) is null, so the output parses back to the same config.
 */
export function rateLimiterToJson(c: RateLimiterConfig): wire.RateLimiter {
  return { bandwidth: c.bandwidth ? bucketToJson(c.bandwidth) : null, ops: c.ops ? bucketToJson(c.ops) : null };
}

export function bucketToJson(b: TokenBucketConfig): wire.TokenBucket {
  return { size: b.size, one_time_burst: b.oneTimeBurst === 0 ? null : b.oneTimeBurst, refill_time: b.refillTimeMs };
}
