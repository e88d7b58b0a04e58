/** PUT/PATCH /pmem/{id}, `pmem` in the config file (virtio-pmem backed by a host file). */
import * as wire from '../api/wire/definitions';
import { decode } from './decode';
import { RateLimiterConfig, rateLimiterFromWire, rateLimiterToJson } from './rate-limiter';
import { checkResourceId, ConfigError } from './validate';

export interface PmemConfig {
  id: string;
  pathOnHost: string;
  rootDevice: boolean;
  readOnly: boolean;
  rateLimiter?: RateLimiterConfig;
}

export function parsePmem(value: unknown, where = 'pmem'): PmemConfig {
  const w = decode(wire.Pmem, value, where);
  const c: PmemConfig = {
    id: checkResourceId(w.id, 'id', where),
    pathOnHost: w.path_on_host,
    rootDevice: w.root_device ?? false,
    readOnly: w.read_only ?? false,
  };
  const rl = rateLimiterFromWire(w.rate_limiter);
  if (rl) c.rateLimiter = rl;
  return c;
}

export function parsePmemUpdate(value: unknown, where = 'pmem'): { id: string; rateLimiter?: RateLimiterConfig } {
  const w = decode(wire.PartialPmem, value, where);
  const id = checkResourceId(w.id, 'id', where);
  const rl = rateLimiterFromWire(w.rate_limiter);
  return rl ? { id, rateLimiter: rl } : { id };
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

export function pmemToJson(c: PmemConfig): wire.Pmem {
  return {
    id: c.id,
    path_on_host: c.pathOnHost,
    root_device: c.rootDevice,
    read_only: c.readOnly,
    rate_limiter: c.rateLimiter ? rateLimiterToJson(c.rateLimiter) : null,
  };
}
