/**
 * virtio-block in the device manager: one device per `drives` entry backed by a host file, the
 * root drive first (slot 0, so the guest names it /dev/vda) with Firecracker's `root=` and
 * `ro`/`rw` parameters. The device code loads only when a VM has a drive.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DriveConfig, DriveUpdate } from '../../../config/drive';
import { osErrorText } from '../../../config/os-error';
import { SparklerError } from '../../../errors';
import type { VirtioDeviceSpec } from '../device-spec';

const device = () => require('./device') as typeof import('./device');
const disk = () => require('./disk') as typeof import('./disk');

export class DriveConfigError extends SparklerError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'DriveConfigError';
  }
}

/** `root=/dev/vda` or `root=PARTUUID=...`, then `ro` or `rw`, as Firecracker adds them for the root drive. */
export function rootDeviceArgs(drive: DriveConfig): string {
  return `root=${drive.partuuid !== undefined ? `PARTUUID=${drive.partuuid}` : '/dev/vda'} ${drive.isReadOnly ? 'ro' : 'rw'}`;
}

function vhostUserUnsupported(id: string): DriveConfigError {
  return new DriveConfigError('EVHOSTUSER', `The drive \`${id}\` is a vhost-user drive (\`socket\`), which this version of Sparkler does not support; use path_on_host.`);
}

/**
 * PUT /drives before boot: opens the backing file as the device will (read-only or not) and
 * closes it, so a wrong path is reported to the API caller and not at InstanceStart.
 */
export function checkDriveFile(drive: DriveConfig): void {
  if (drive.socket !== undefined) throw vhostUserUnsupported(drive.driveId);
  if (drive.pathOnHost === undefined) throw new DriveConfigError('EDRIVEFILE', `The drive \`${drive.driveId}\` has no path_on_host.`);
  disk().DiskFile.open(drive.pathOnHost, drive.isReadOnly).close();
}

export const blockSpec: VirtioDeviceSpec<DriveConfig> = {
  type: 'block',
  instances(config) {
    const drives = [...(config.drives ?? [])].sort((a, b) => Number(b.isRootDevice) - Number(a.isRootDevice));
    const roots = drives.filter((d) => d.isRootDevice);
    if (roots.length > 1) throw new DriveConfigError('EROOTDRIVE', `Only one drive can be the root device; \`${roots[1].driveId}\` is a second one.`);
    return drives;
  },
  create(drive, ctx) {
    if (drive.socket !== undefined || drive.pathOnHost === undefined) throw vhostUserUnsupported(drive.driveId);
    const block = new (device().VirtioBlock)({
      driveId: drive.driveId, path: drive.pathOnHost, readOnly: drive.isReadOnly, cacheType: drive.cacheType,
      ioEngine: drive.ioEngine, rateLimiter: drive.rateLimiter, log: ctx.log, clock: ctx.clock, timers: ctx.timers,
    });
    return {
      id: drive.driveId,
      device: block,
      metricsGroup: `block_${drive.driveId}`,
      metrics: () => block.metrics.toJson(),
      gauges: ['in_flight'],
      cmdline: drive.isRootDevice ? rootDeviceArgs(drive) : undefined,
      firstSlot: drive.isRootDevice,
      update: (u) => {
        const { pathOnHost, rateLimiter } = u as DriveUpdate;
        if (pathOnHost === undefined && rateLimiter === undefined) {
          // Firecracker's words for a PATCH with nothing to change (its tests match them).
          throw new DriveConfigError('ENOUPDATE', `Running method expected different backend: PATCH /drives/${drive.driveId} after boot changes path_on_host and/or rate_limiter, and this one has neither.`);
        }
        try {
          block.update({ path: pathOnHost, rateLimiter });
        } catch (err) {
          if (!(err instanceof disk().DriveFileError)) throw err;
          throw new DriveConfigError('EDRIVEFILE', `Error manipulating the backing file: ${osErrorText(err.cause ?? err)} ${pathOnHost}. ${err.message}`);
        }
      },
      dispose: () => block.dispose(),
      save: () => ({ inFlight: block.metrics.inFlight, heldChains: [block.holdsRequest ? 1 : 0] }),
    };
  },
  trainingSection(scratchDir) {
    const disk = path.join(scratchDir, 'train-disk.img');
    fs.writeFileSync(disk, Buffer.alloc(64 * 1024));
    return { section: 'drives', value: [{ drive_id: 'train', path_on_host: disk, is_root_device: false, is_read_only: true }] };
  },
};
