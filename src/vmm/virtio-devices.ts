/**
 * Attaches the virtio devices of a microVM: each gets a virtio-mmio slot (4 KiB window on the
 * MMIO bus, its own GSI), an irqfd for its interrupt, one ioeventfd per queue on the slot's
 * QueueNotify register (datamatch = queue index) watched on the main loop, and a
 * `virtio_mmio.device=` parameter on the kernel command line. Drives come first, the root
 * drive first of all so the guest names it /dev/vda; then the entropy device.
 *
 * The notification path avoids exits: the guest's QueueNotify write completes inside KVM,
 * which signals the eventfd; the loop wakes, drains the counter and runs the queue.
 */
import type { DriveConfig, DriveUpdate } from '../config/drive';
import type { EntropyConfig } from '../config/entropy';
import { Bus } from '../devices/bus';
import type { VirtioBlock } from '../devices/virtio/block';
import { GuestTriggeredLog, LogSink } from '../devices/virtio/guest-log';
import {
  mmioSlotAddress, mmioSlotGsi, queueNotifyAddress, VIRTIO_MMIO_MAX_SLOTS, VIRTIO_MMIO_SIZE, virtioMmioCmdlineFragment,
} from '../devices/virtio/mmio-slots';
import type { MmioTransport } from '../devices/virtio/mmio-transport';
import type { VirtioDevice } from '../devices/virtio/device';
import type { VirtioRng } from '../devices/virtio/rng';
import { SparklerError } from '../errors';
import { check } from '../kvm/check';
import { IOEVENTFD_FLAG, VmFd } from '../kvm/vm';
import { KernelCmdline } from '../loader/cmdline';
import { GuestMemory } from '../memory/guest-memory';
import { native, WatchHandle } from '../native';
import { IrqfdLine } from './irq-line';
import type { Vmm } from './vmm';

const EFD_NONBLOCK = 0x800;

// The device code loads when a VM has such a device: a VM without drives or an entropy device
// starts without evaluating it (~20 modules, ~0.5 ms of a start natively; cold JavaScript runs
// ~25x slower in the emulated KVM host).
const block = () => require('../devices/virtio/block') as typeof import('../devices/virtio/block');
const rng = () => require('../devices/virtio/rng') as typeof import('../devices/virtio/rng');
const mmioTransport = () => require('../devices/virtio/mmio-transport') as typeof import('../devices/virtio/mmio-transport');

export interface VirtioConfig {
  drives?: readonly DriveConfig[];
  entropy?: EntropyConfig;
}

export class VirtioDeviceError extends SparklerError {
  constructor(code: string, message: string, cause?: unknown) {
    super(code, message, { cause });
    this.name = 'VirtioDeviceError';
  }
}

/** The virtio devices of one microVM, by what the API names them. */
export class VirtioDevices {
  readonly drives = new Map<string, VirtioBlock>();
  entropy: VirtioRng | undefined;
  readonly transports: MmioTransport[] = [];
  /** Queue notifications that arrived through ioeventfds (each one saved a vCPU exit). */
  queueNotifications = 0;
  private readonly watches: WatchHandle[] = [];

  /** PATCH /drives/{id} after boot: a new backing file (or the same, re-sized) and/or rate limiter. */
  updateDrive(update: DriveUpdate): void {
    const drive = this.drives.get(update.driveId);
    if (drive === undefined) {
      throw new VirtioDeviceError('ENODRIVE', `The drive \`${update.driveId}\` does not exist: only drives attached before boot can be updated.`);
    }
    drive.update({ path: update.pathOnHost, rateLimiter: update.rateLimiter });
  }

  /** Per-device counters in Firecracker's metrics layout (block_<drive_id>, entropy). */
  metrics(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [id, d] of this.drives) out[`block_${id}`] = d.metrics.toJson();
    if (this.entropy) out.entropy = this.entropy.metrics.toJson();
    return out;
  }

  /** Stops the fd watches and timers and closes the drives' files. */
  dispose(): void {
    for (const w of this.watches.splice(0)) native().unwatchFd(w);
    for (const d of this.drives.values()) d.dispose();
    this.entropy?.dispose();
  }

  /** Puts `device` in the next free slot; returns the slot. */
  add(vm: VmFd, mmio: Bus, memory: GuestMemory, cmdline: KernelCmdline, device: VirtioDevice, name: string, log: LogSink): number {
    const slot = this.transports.length;
    if (slot >= VIRTIO_MMIO_MAX_SLOTS) {
      throw new VirtioDeviceError('ETOOMANYDEVICES', `Cannot attach ${name}: all ${VIRTIO_MMIO_MAX_SLOTS} virtio-mmio slots are taken.`);
    }
    const transport = new (mmioTransport().MmioTransport)(device, memory, IrqfdLine.register(vm, mmioSlotGsi(slot)), { name, log });
    mmio.insert(transport, mmioSlotAddress(slot), VIRTIO_MMIO_SIZE, name);
    transport.queues.forEach((_, index) => {
      const fd = check(native().eventfd(0, EFD_NONBLOCK), `eventfd for ${name} queue ${index}`);
      vm.registerIoeventfd(queueNotifyAddress(slot), 4, fd, IOEVENTFD_FLAG.DATAMATCH, BigInt(index));
      this.watches.push(native().watchFd(fd, (events) => {
        if (events < 0) return log.error(`${name}: watching queue ${index}'s notifications failed (errno ${-events}).`);
        // Several notifications may have been merged into the counter: one pass serves them all.
        if (native().eventfdRead(fd) <= 0) return;
        this.queueNotifications++;
        transport.notifyQueue(index);
      }));
    });
    cmdline.append(virtioMmioCmdlineFragment(slot));
    this.transports.push(transport);
    return slot;
  }
}

const attached = new WeakMap<VmFd, VirtioDevices>();

/** The virtio devices of a running microVM (undefined when it has none). */
export function virtioDevicesOf(vmm: Vmm): VirtioDevices | undefined {
  return attached.get(vmm.parts.vm);
}

/** PATCH /drives/{drive_id} after boot. Throws VirtioDeviceError (no such drive) or DriveFileError (cannot open the file). */
export function updateDrive(vmm: Vmm, update: DriveUpdate): void {
  const devices = virtioDevicesOf(vmm);
  if (devices === undefined) throw new VirtioDeviceError('ENODRIVE', `The drive \`${update.driveId}\` does not exist: this microVM has no drives.`);
  devices.updateDrive(update);
}

/**
 * PUT /drives before boot: opens the backing file as the device will (read-only or not) and
 * closes it, so a wrong path is reported to the API caller and not at InstanceStart.
 */
export function checkDriveFile(drive: DriveConfig): void {
  if (drive.socket !== undefined) throw vhostUserUnsupported(drive.driveId);
  if (drive.pathOnHost === undefined) throw new VirtioDeviceError('EDRIVEFILE', `The drive \`${drive.driveId}\` has no path_on_host.`);
  block().DiskFile.open(drive.pathOnHost, drive.isReadOnly).close();
}

function vhostUserUnsupported(id: string): VirtioDeviceError {
  return new VirtioDeviceError('EVHOSTUSER', `The drive \`${id}\` is a vhost-user drive (\`socket\`), which this version of Sparkler does not support; use path_on_host.`);
}

/** `root=/dev/vda` or `root=PARTUUID=...`, then `ro` or `rw`, as Firecracker adds them for the root drive. */
export function rootDeviceArgs(drive: DriveConfig): string {
  return `root=${drive.partuuid !== undefined ? `PARTUUID=${drive.partuuid}` : '/dev/vda'} ${drive.isReadOnly ? 'ro' : 'rw'}`;
}

/**
 * Creates and wires every configured virtio device; appends their parameters (and the root
 * drive's) to `cmdline`, which the caller then writes into guest memory.
 */
export function attachVirtioDevices(vm: VmFd, mmio: Bus, memory: GuestMemory, cmdline: KernelCmdline, config: VirtioConfig, log: LogSink = new GuestTriggeredLog()): VirtioDevices {
  const devices = new VirtioDevices();
  try {
    const drives = [...(config.drives ?? [])].sort((a, b) => Number(b.isRootDevice) - Number(a.isRootDevice));
    for (const drive of drives) {
      if (drive.socket !== undefined || drive.pathOnHost === undefined) throw vhostUserUnsupported(drive.driveId);
      if (devices.drives.has(drive.driveId)) throw new VirtioDeviceError('EDUPDRIVE', `Two drives have the id \`${drive.driveId}\`.`);
      const device = new (block().VirtioBlock)({
        driveId: drive.driveId, path: drive.pathOnHost, readOnly: drive.isReadOnly, cacheType: drive.cacheType,
        ioEngine: drive.ioEngine, rateLimiter: drive.rateLimiter, log,
      });
      devices.drives.set(drive.driveId, device);
      const slot = devices.add(vm, mmio, memory, cmdline, device, `virtio-block ${drive.driveId}`, log);
      if (drive.isRootDevice) {
        if (slot !== 0) throw new VirtioDeviceError('EROOTDRIVE', `Only one drive can be the root device; \`${drive.driveId}\` is a second one.`);
        cmdline.append(rootDeviceArgs(drive));
      }
    }
    if (config.entropy !== undefined) {
      devices.entropy = new (rng().VirtioRng)({ rateLimiter: config.entropy.rateLimiter, log });
      devices.add(vm, mmio, memory, cmdline, devices.entropy, 'virtio-rng', log);
    }
  } catch (err) {
    devices.dispose();
    throw err;
  }
  attached.set(vm, devices);
  return devices;
}
