/**
 * PUT/PATCH /drives/{drive_id}, `drives` in the config file. A drive is either a virtio-block
 * device backed by a host file (`path_on_host`) or a vhost-user-block device whose backend
 * listens on `socket`; the two field sets exclude each other, as in Firecracker.
 */
import { parseRateLimiter, RateLimiterConfig, rateLimiterToJson } from './rate-limiter';
import {
  ConfigError, expectObject, optionalBoolean, optionalEnum, optionalString, rejectUnknownFields,
  requiredBoolean, requiredId,
} from './validate';

export type CacheType = 'Unsafe' | 'Writeback';
export type IoEngine = 'Sync' | 'Async';

/**
 * One drive. Exactly one of `pathOnHost` (virtio-block) and `socket` (vhost-user-block) is set;
 * `isReadOnly`, `ioEngine` and `rateLimiter` only apply to virtio-block.
 */
export interface DriveConfig {
  driveId: string;
  /** Host file backing a virtio-block drive. */
  pathOnHost?: string;
  isRootDevice: boolean;
  /** Root partition UUID for the kernel's `root=PARTUUID=`; only used for the root device. */
  partuuid?: string;
  isReadOnly: boolean;
  /** Unsafe: flush requests complete without syncing; Writeback: they fsync the file. */
  cacheType: CacheType;
  ioEngine: IoEngine;
  rateLimiter?: RateLimiterConfig;
  /** vhost-user-block backend socket. */
  socket?: string;
}

/** PATCH /drives/{drive_id}: the fields that may change after boot; absent ones stay. */
export interface DriveUpdate {
  driveId: string;
  pathOnHost?: string;
  rateLimiter?: RateLimiterConfig;
}

const FIELDS = [
  'drive_id', 'path_on_host', 'is_root_device', 'partuuid', 'is_read_only', 'cache_type',
  'io_engine', 'rate_limiter', 'socket',
] as const;

/** Parses one drive; `where` names it in errors (`drives[0]` or `drives/rootfs`). */
export function parseDrive(value: unknown, where = 'drive'): DriveConfig {
  const obj = expectObject(value, where);
  rejectUnknownFields(obj, FIELDS, where);
  const driveId = requiredId(obj, 'drive_id', where);
  const isRootDevice = requiredBoolean(obj, 'is_root_device', where);
  const partuuid = optionalString(obj, 'partuuid', where);
  const cacheType = optionalEnum(obj, 'cache_type', where, ['Unsafe', 'Writeback'] as const) ?? 'Unsafe';
  const pathOnHost = optionalString(obj, 'path_on_host', where);
  const isReadOnly = optionalBoolean(obj, 'is_read_only', where);
  const ioEngine = optionalEnum(obj, 'io_engine', where, ['Sync', 'Async'] as const);
  const rateLimiter = parseRateLimiter(obj.rate_limiter, `${where}.rate_limiter`);
  const socket = optionalString(obj, 'socket', where);
  if (socket !== undefined) {
    const virtioOnly = ['path_on_host', 'is_read_only', 'io_engine', 'rate_limiter'].filter((k) => obj[k] !== undefined && obj[k] !== null);
    if (virtioOnly.length > 0) {
      throw new ConfigError(`${where}: a vhost-user drive (\`socket\`) cannot have ${virtioOnly.map((k) => `\`${k}\``).join(', ')}.`);
    }
  } else if (pathOnHost === undefined) {
    throw new ConfigError(`${where}: missing field \`path_on_host\` (or \`socket\` for a vhost-user drive).`);
  }
  const drive: DriveConfig = { driveId, isRootDevice, isReadOnly: isReadOnly ?? false, cacheType, ioEngine: ioEngine ?? 'Sync' };
  if (pathOnHost !== undefined) drive.pathOnHost = pathOnHost;
  if (partuuid !== undefined) drive.partuuid = partuuid;
  if (rateLimiter !== undefined) drive.rateLimiter = rateLimiter;
  if (socket !== undefined) drive.socket = socket;
  return drive;
}

export function parseDriveUpdate(value: unknown, where = 'drive'): DriveUpdate {
  const obj = expectObject(value, where);
  rejectUnknownFields(obj, ['drive_id', 'path_on_host', 'rate_limiter'], where);
  const update: DriveUpdate = { driveId: requiredId(obj, 'drive_id', where) };
  const pathOnHost = optionalString(obj, 'path_on_host', where);
  const rateLimiter = parseRateLimiter(obj.rate_limiter, `${where}.rate_limiter`);
  if (pathOnHost !== undefined) update.pathOnHost = pathOnHost;
  if (rateLimiter !== undefined) update.rateLimiter = rateLimiter;
  return update;
}

/**
 * Adds or replaces (same drive_id) a drive in `drives`, keeping the root device first as
 * Firecracker does (the guest sees it as /dev/vda). A second root device is refused.
 */
export function insertDrive(drives: readonly DriveConfig[], drive: DriveConfig): DriveConfig[] {
  const list = [...drives];
  const index = list.findIndex((d) => d.driveId === drive.driveId);
  const root = list.findIndex((d) => d.isRootDevice);
  if (drive.isRootDevice && root !== -1 && root !== index) {
    throw new ConfigError('A root block device already exists!');
  }
  if (index === -1) {
    if (drive.isRootDevice) list.unshift(drive); else list.push(drive);
  } else {
    list[index] = drive;
    if (drive.isRootDevice && index !== 0) list.unshift(...list.splice(index, 1));
  }
  return list;
}

/** Parses the `drives` array of a config file, applying the same insertion rules as the API. */
export function parseDrives(value: unknown): DriveConfig[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ConfigError('drives: expected a JSON array.');
  let drives: DriveConfig[] = [];
  value.forEach((item, i) => {
    try {
      drives = insertDrive(drives, parseDrive(item, `drives[${i}]`));
    } catch (err) {
      if (err instanceof ConfigError && !err.message.startsWith('drives[')) throw new ConfigError(`drives[${i}]: ${err.message}`);
      throw err;
    }
  });
  return drives;
}

export function driveToJson(d: DriveConfig): Record<string, unknown> {
  const json: Record<string, unknown> = {
    drive_id: d.driveId,
    partuuid: d.partuuid ?? null,
    is_root_device: d.isRootDevice,
    cache_type: d.cacheType,
  };
  if (d.socket !== undefined) {
    json.socket = d.socket;
  } else {
    json.is_read_only = d.isReadOnly;
    json.path_on_host = d.pathOnHost;
    json.rate_limiter = d.rateLimiter ? rateLimiterToJson(d.rateLimiter) : null;
    json.io_engine = d.ioEngine;
  }
  return json;
}
