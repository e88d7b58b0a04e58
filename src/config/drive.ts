/**
 * PUT/PATCH /drives/{drive_id}, `drives` in the config file. A drive is either a virtio-block
 * device backed by a host file (`path_on_host`) or a vhost-user-block device whose backend
 * listens on `socket`; the two field sets exclude each other, as in Firecracker.
 */
import * as wire from '../api/wire/definitions';
import { decode } from './decode';
import { RateLimiterConfig, rateLimiterFromWire, rateLimiterToJson } from './rate-limiter';
import { checkResourceId, ConfigError } from './validate';

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

/** Parses one drive; `where` names it in errors (`drives[0]` or `drives/rootfs`). */
export function parseDrive(value: unknown, where = 'drive'): DriveConfig {
  const w = decode(wire.Drive, value, where);
  checkResourceId(w.drive_id, 'drive_id', where);
  if (w.socket != null) {
    const virtioOnly = (['path_on_host', 'is_read_only', 'io_engine', 'rate_limiter'] as const).filter((k) => w[k] != null);
    if (virtioOnly.length > 0) {
      throw new ConfigError(`${where}: a vhost-user drive (\`socket\`) cannot have ${virtioOnly.map((k) => `\`${k}\``).join(', ')}.`);
    }
  } else if (w.path_on_host == null) {
    throw new ConfigError(`${where}: missing field \`path_on_host\` (or \`socket\` for a vhost-user drive).`);
  }
  const drive: DriveConfig = {
    driveId: w.drive_id, isRootDevice: w.is_root_device, isReadOnly: w.is_read_only ?? false,
    cacheType: w.cache_type ?? 'Unsafe', ioEngine: w.io_engine ?? 'Sync',
  };
  if (w.path_on_host != null) drive.pathOnHost = w.path_on_host;
  if (w.partuuid != null) drive.partuuid = w.partuuid;
  const rateLimiter = rateLimiterFromWire(w.rate_limiter);
  if (rateLimiter !== undefined) drive.rateLimiter = rateLimiter;
  if (w.socket != null) drive.socket = w.socket;
  return drive;
}

export function parseDriveUpdate(value: unknown, where = 'drive'): DriveUpdate {
  const w = decode(wire.PartialDrive, value, where);
  checkResourceId(w.drive_id, 'drive_id', where);
  const update: DriveUpdate = { driveId: w.drive_id };
  const rateLimiter = rateLimiterFromWire(w.rate_limiter);
  if (w.path_on_host != null) update.pathOnHost = w.path_on_host;
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

/** GET /vm/config's form: every field, null where it does not apply (as Firecracker echoes it). */
export function driveToJson(d: DriveConfig): wire.Drive {
  const vhost = d.socket !== undefined;
  return {
    drive_id: d.driveId,
    partuuid: d.partuuid ?? null,
    is_root_device: d.isRootDevice,
    cache_type: d.cacheType,
    is_read_only: vhost ? null : d.isReadOnly,
    path_on_host: vhost ? null : d.pathOnHost ?? null,
    rate_limiter: !vhost && d.rateLimiter ? rateLimiterToJson(d.rateLimiter) : null,
    io_engine: vhost ? null : d.ioEngine,
    socket: d.socket ?? null,
  };
}
