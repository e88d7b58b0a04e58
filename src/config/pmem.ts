/** PUT/PATCH /pmem/{id}, `pmem` in the config file (virtio-pmem backed by a host file). */
import { parseRateLimiter, RateLimiterConfig, rateLimiterToJson } from './rate-limiter';
import { ConfigError, optionalBoolean, parseObject, requiredId, requiredString } from './validate';

export interface PmemConfig {
  id: string;
  pathOnHost: string;
  rootDevice: boolean;
  readOnly: boolean;
  rateLimiter?: RateLimiterConfig;
}

export function parsePmem(value: unknown, where = 'pmem'): PmemConfig {
  const obj = parseObject(value, ['id', 'path_on_host', 'root_device', 'read_only', 'rate_limiter'], where);
  const c: PmemConfig = {
    id: requiredId(obj, 'id', where),
    pathOnHost: requiredString(obj, 'path_on_host', where),
    rootDevice: optionalBoolean(obj, 'root_device', where) ?? false,
    readOnly: optionalBoolean(obj, 'read_only', where) ?? false,
  };
  const rl = parseRateLimiter(obj.rate_limiter, `${where}.rate_limiter`);
  if (rl) c.rateLimiter = rl;
  return c;
}

export function parsePmemUpdate(value: unknown, where = 'pmem'): { id: string; rateLimiter?: RateLimiterConfig } {
  const obj = parseObject(value, ['id', 'rate_limiter'], where);
  const rl = parseRateLimiter(obj.rate_limiter, `${where}.rate_limiter`);
  return rl ? { id: requiredId(obj, 'id', where), rateLimiter: rl } : { id: requiredId(obj, 'id', where) };
}

/** Adds or replaces (same id) a pmem device; only one root device among pmem devices and drives. */
export function insertPmem(list: readonly PmemConfig[], pmem: PmemConfig, driveRootExists: boolean): PmemConfig[] {
  const otherRoot = list.some((p) => p.rootDevice && p.id !== pmem.id);
  if (pmem.rootDevice && (otherRoot || driveRootExists)) {
    throw new ConfigError('A root device already exists: only one drive or pmem device can be the root device.');
  }
  const index = list.findIndex((p) => p.id === pmem.id);
  return index === -1 ? [...list, pmem] : list.map((p, n) => (n === index ? pmem : p));
}

export function pmemToJson(c: PmemConfig): Record<string, unknown> {
  return {
    id: c.id,
    path_on_host: c.pathOnHost,
    root_device: c.rootDevice,
    read_only: c.readOnly,
    rate_limiter: c.rateLimiter ? rateLimiterToJson(c.rateLimiter) : null,
  };
}
