/**
 * The JSON form of a rate limiter (`rate_limiter` on drives and network interfaces, in the API
 * and in the config file). Parsing keeps the numbers as given, zeros included: a bucket with
 * `size` 0 or `refill_time` 0 means "no limit" at creation and "remove this limit" in a PATCH,
 * and that reading belongs to src/ratelimit, which needs to tell it apart from an absent bucket.
 */
import { expectObject, optionalInteger, rejectUnknownFields, requiredInteger } from './validate';

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

const LIMITER_FIELDS = ['bandwidth', 'ops'] as const;
const BUCKET_FIELDS = ['size', 'one_time_burst', 'refill_time'] as const;
/** The schema says int64; JavaScript numbers are exact only up to 2^53 - 1. */
const MAX = Number.MAX_SAFE_INTEGER;

/**
 * Parses `value` (where names it in errors, e.g. `drives[0].rate_limiter`). Absent or null gives
 * undefined; serde reads a null `Option` field as absent, and so do we, in both places.
 */
export function parseRateLimiter(value: unknown, where: string): RateLimiterConfig | undefined {
  if (value === undefined || value === null) return undefined;
  const obj = expectObject(value, where);
  rejectUnknownFields(obj, LIMITER_FIELDS, where);
  const config: RateLimiterConfig = {};
  const bandwidth = parseBucket(obj.bandwidth, `${where}.bandwidth`);
  const ops = parseBucket(obj.ops, `${where}.ops`);
  if (bandwidth) config.bandwidth = bandwidth;
  if (ops) config.ops = ops;
  return config;
}

function parseBucket(value: unknown, where: string): TokenBucketConfig | undefined {
  if (value === undefined || value === null) return undefined;
  const obj = expectObject(value, where);
  rejectUnknownFields(obj, BUCKET_FIELDS, where);
  return {
    size: requiredInteger(obj, 'size', where, 0, MAX),
    oneTimeBurst: optionalInteger(obj, 'one_time_burst', where, 0, MAX) ?? 0,
    refillTimeMs: requiredInteger(obj, 'refill_time', where, 0, MAX),
  };
}

/** True when the bucket limits nothing (Firecracker: size or refill_time of 0). */
export function isUnlimitedBucket(b: TokenBucketConfig): boolean {
  return b.size === 0 || b.refillTimeMs === 0;
}

/** The API's JSON form; absent buckets stay absent so the output parses back to the same config. */
export function rateLimiterToJson(c: RateLimiterConfig): Record<string, unknown> {
  const json: Record<string, unknown> = {};
  if (c.bandwidth) json.bandwidth = bucketToJson(c.bandwidth);
  if (c.ops) json.ops = bucketToJson(c.ops);
  return json;
}

function bucketToJson(b: TokenBucketConfig): Record<string, unknown> {
  return { size: b.size, one_time_burst: b.oneTimeBurst, refill_time: b.refillTimeMs };
}
