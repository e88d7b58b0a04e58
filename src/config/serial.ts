/** PUT /serial, `serial` in the config file: where the guest's serial console output goes. */
import { parseObject, optionalString, expectObject, rejectUnknownFields, requiredInteger, optionalInteger } from './validate';
import { TokenBucketConfig } from './rate-limiter';

export interface SerialConfig {
  /** File or named pipe for the console output; stdout when absent. */
  serialOutPath?: string;
  /** Bytes per refill period; output beyond it is dropped (and counted). */
  rateLimiter?: TokenBucketConfig;
}

function parseBucket(value: unknown, where: string): TokenBucketConfig | undefined {
  if (value === undefined || value === null) return undefined;
  const obj = expectObject(value, where);
  rejectUnknownFields(obj, ['size', 'one_time_burst', 'refill_time'], where);
  return {
    size: requiredInteger(obj, 'size', where, 0, Number.MAX_SAFE_INTEGER),
    oneTimeBurst: optionalInteger(obj, 'one_time_burst', where, 0, Number.MAX_SAFE_INTEGER) ?? 0,
    refillTimeMs: requiredInteger(obj, 'refill_time', where, 0, Number.MAX_SAFE_INTEGER),
  };
}

export function parseSerialConfig(value: unknown, where = 'serial'): SerialConfig {
  const obj = parseObject(value, ['serial_out_path', 'rate_limiter'], where);
  const c: SerialConfig = {};
  const path = optionalString(obj, 'serial_out_path', where);
  const bucket = parseBucket(obj.rate_limiter, `${where}.rate_limiter`);
  if (path !== undefined) c.serialOutPath = path;
  if (bucket) c.rateLimiter = bucket;
  return c;
}

export function serialConfigToJson(c: SerialConfig): Record<string, unknown> {
  const json: Record<string, unknown> = { serial_out_path: c.serialOutPath ?? null };
  if (c.rateLimiter) json.rate_limiter = { size: c.rateLimiter.size, one_time_burst: c.rateLimiter.oneTimeBurst, refill_time: c.rateLimiter.refillTimeMs };
  return json;
}
