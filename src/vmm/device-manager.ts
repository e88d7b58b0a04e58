/**
 * The VM's one list of virtio devices (Firecracker's MMIO device manager is the model). Each
 * attached device has its id, type, virtio-mmio slot, GSI, transport, device, metrics group,
 * PATCH handler and dispose. The builder attaches the registered specs in their fixed order;
 * metrics, PATCH, GET /vm/config and (later) snapshots enumerate the list.
 *
 * Per device: a 4 KiB register window at 0xC000_1000 + slot * 4 KiB on GSI 5 + slot, an irqfd
 * for its interrupt, one ioeventfd per queue on the slot's QueueNotify register (datamatch =
 * queue index) watched on the loop, so a guest notify completes inside KVM with no vCPU exit.
 */
import type { DeviceContext, FdWatch } from '../devices/virtio/device-context';
import type { CreatedDevice, DeviceConfigs, DeviceCounters, VirtioDeviceSpec } from '../devices/virtio/device-spec';
import {
  mmioSlotAddress, mmioSlotGsi, queueNotifyAddress, VIRTIO_MMIO_MAX_SLOTS, VIRTIO_MMIO_SIZE, virtioMmioCmdlineFragment,
} from '../devices/virtio/mmio-slots';
import type { MmioTransport, TransportState } from '../devices/virtio/mmio-transport';
import { Bus } from '../devices/bus';
import { SparklerError } from '../errors';
import { check } from '../kvm/check';
import { IOEVENTFD_FLAG, VmFd } from '../kvm/vm';
import { GuestMemory } from '../memory/guest-memory';
import { native, NativeShim } from '../native';
import { IrqfdLine } from './irq-line';

const EFD_NONBLOCK = 0x800;
const mmioTransport = () => require('../devices/virtio/mmio-transport') as typeof import('../devices/virtio/mmio-transport');

export class DeviceManagerError extends SparklerError {
  constructor(code: string, message: string, cause?: unknown) {
    super(code, message, { cause });
    this.name = 'DeviceManagerError';
  }
}

/** One device's part of a snapshot. */
export interface SavedVirtioDevice {
  type: string;
  id: string;
  slot: number;
  transport: TransportState;
  device?: unknown;
}

/** One attached device. */
export interface AttachedDevice {
  readonly type: string;
  readonly id: string;
  readonly slot: number;
  readonly gsi: number;
  /** Guest-physical base of its register window. */
  readonly address: number;
  readonly transport: MmioTransport;
  readonly created: CreatedDevice;
}

/** What the manager needs of the VM; the builder passes the real ones, tests may pass fakes. */
export interface DeviceManagerDeps {
  vm: VmFd;
  mmio: Bus;
  memory: GuestMemory;
  context: DeviceContext;
  shim?: NativeShim;
}

interface Owned {
  irq: IrqfdLine;
  queueFds: number[];
  watches: FdWatch[];
}

export class DeviceManager {
  private readonly attached: AttachedDevice[] = [];
  private readonly owned: Owned[] = [];
  private readonly shim: NativeShim;
  private disposed = false;
  /** Queue notifications that arrived through ioeventfds (each one saved a vCPU exit). */
  queueNotifications = 0;

  constructor(private readonly deps: DeviceManagerDeps) {
    this.shim = deps.shim ?? native();
  }

  /** The devices in slot order. */
  get devices(): readonly AttachedDevice[] {
    return this.attached;
  }

  /** Creates and attaches every configured device of every spec, in the specs' order. */
  attachAll(specs: readonly VirtioDeviceSpec<any>[], config: DeviceConfigs): void {
    for (const spec of specs) {
      for (const instance of spec.instances(config)) this.attach(spec, instance);
    }
  }

  /** Creates one device from `config` and puts it in the next free slot. */
  attach<C>(spec: VirtioDeviceSpec<C>, config: C): AttachedDevice {
    const slot = this.attached.length;
    if (slot >= VIRTIO_MMIO_MAX_SLOTS) {
      throw new DeviceManagerError('ETOOMANYDEVICES', `Cannot attach another ${spec.type} device: all ${VIRTIO_MMIO_MAX_SLOTS} virtio-mmio slots are taken.`);
    }
    const created = spec.create(config, this.deps.context);
    try {
      if (this.find(spec.type, created.id)) throw new DeviceManagerError('EDUPDEVICE', `Two ${spec.type} devices have the id \`${created.id}\`.`);
      if (created.firstSlot && slot !== 0) {
        throw new DeviceManagerError('EFIRSTSLOT', `The ${spec.type} device \`${created.id}\` must be the first device, but ${this.attached[0].type} \`${this.attached[0].id}\` is.`);
      }
      return this.wire(spec.type, created, slot);
    } catch (err) {
      created.dispose();
      throw err;
    }
  }

  private wire(type: string, created: CreatedDevice, slot: number): AttachedDevice {
    const { vm, mmio, memory, context } = this.deps;
    const name = `virtio-${type} ${created.id}`;
    const owned: Owned = { irq: IrqfdLine.register(vm, mmioSlotGsi(slot), this.shim), queueFds: [], watches: [] };
    try {
      const transport = new (mmioTransport().MmioTransport)(created.device, memory, owned.irq, { name, log: context.log });
      transport.queues.forEach((_, index) => {
        const fd = check(this.shim.eventfd(0, EFD_NONBLOCK), `eventfd for ${name} queue ${index}`);
        owned.queueFds.push(fd);
        vm.registerIoeventfd(queueNotifyAddress(slot), 4, fd, IOEVENTFD_FLAG.DATAMATCH, BigInt(index));
        owned.watches.push(context.fds.watch(fd, (events) => {
          if (events < 0) return context.host.error(`${name}: watching queue ${index}'s notifications failed (errno ${-events}).`);
          // Several notifications may have been merged into the counter: one pass serves them all.
          if (this.shim.eventfdRead(fd) <= 0) return;
          this.queueNotifications++;
          transport.notifyQueue(index);
        }));
      });
      mmio.insert(transport, mmioSlotAddress(slot), VIRTIO_MMIO_SIZE, name);
      const device: AttachedDevice = { type, id: created.id, slot, gsi: mmioSlotGsi(slot), address: mmioSlotAddress(slot), transport, created };
      this.attached.push(device);
      this.owned.push(owned);
      return device;
    } catch (err) {
      this.release(owned);
      throw err;
    }
  }

  /** The device of `type` named `id`, if attached. */
  find(type: string, id: string): AttachedDevice | undefined {
    return this.attached.find((d) => d.type === type && d.id === id);
  }

  /** A PATCH after boot. Throws DeviceManagerError when no such device exists or it takes no updates. */
  update(type: string, id: string, update: unknown): void {
    const device = this.find(type, id);
    if (device === undefined) throw new DeviceManagerError('ENODEVICE', `The ${type} device \`${id}\` does not exist: only devices attached before boot can be updated.`);
    if (device.created.update === undefined) throw new DeviceManagerError('ENOUPDATE', `The ${type} device \`${id}\` cannot be changed after boot.`);
    device.created.update(update);
  }

  /** Tells every device the VM paused (no host I/O such as TAP reads) or resumed. */
  setPaused(paused: boolean): void {
    for (const d of this.attached) d.created.setPaused?.(paused);
  }

  /** The kernel command-line parameters of every device, in slot order. */
  cmdlineFragments(): string[] {
    return this.attached.flatMap((d) => [virtioMmioCmdlineFragment(d.slot), ...(d.created.cmdline ? [d.created.cmdline] : [])]);
  }

  /** Per-device counters by metrics group. */
  metrics(): Map<string, { counters: () => DeviceCounters; gauges: readonly string[] }> {
    return new Map(this.attached.map((d) => [d.created.metricsGroup, { counters: () => d.created.metrics(), gauges: d.created.gauges ?? [] }]));
  }

  /** Requests the devices still run on the host; a snapshot waits for 0. */
  inFlight(): number {
    return this.attached.reduce((n, d) => n + (d.created.save?.().inFlight ?? 0), 0);
  }

  /** Every device's transport and own state for a snapshot (the VM is paused and nothing is in flight). */
  saveStates(): SavedVirtioDevice[] {
    const unsaved = this.attached.find((d) => d.created.save === undefined);
    if (unsaved) {
      // A device whose state is not persisted would come back broken (a vsock connection, a held
      // network frame, a balloon target): refuse rather than write a snapshot that restores wrong.
      throw new DeviceManagerError('ESNAPSHOTUNSUPPORTED', `The ${unsaved.type} device \`${unsaved.id}\` cannot be saved in a snapshot yet: its state is not persisted. Snapshot a VM without it.`);
    }
    for (const d of this.attached) d.created.prepareSave?.();
    return this.attached.map((d) => {
      const info = d.created.save?.();
      if (info && info.inFlight > 0) throw new DeviceManagerError('EDEVICEBUSY', `The ${d.type} device \`${d.id}\` still has ${info.inFlight} requests in flight.`);
      return { type: d.type, id: d.id, slot: d.slot, transport: d.transport.saveState(info?.heldChains), device: info?.state };
    });
  }

  /** Restores saved states onto the devices a restore attached from the same configuration. */
  restoreStates(saved: readonly SavedVirtioDevice[]): void {
    if (saved.length !== this.attached.length) {
      throw new DeviceManagerError('ESNAPSHOTDEVICE', `The snapshot has ${saved.length} virtio devices, but its configuration made ${this.attached.length}.`);
    }
    for (const d of this.attached) {
      const s = saved.find((x) => x.type === d.type && x.id === d.id);
      if (s === undefined || s.slot !== d.slot) throw new DeviceManagerError('ESNAPSHOTDEVICE', `The snapshot has no state for the ${d.type} device \`${d.id}\` in slot ${d.slot}.`);
      if (s.device !== undefined) d.created.restore?.(s.device);
      d.transport.restoreState(s.transport);
    }
  }

  /** After a restore's vCPUs have their state: see MmioTransport.redeliverPendingInterrupt. */
  redeliverPendingInterrupts(): void {
    for (const d of this.attached) d.transport.redeliverPendingInterrupt();
  }

  /** Disposes every device and closes their fds, last attached first. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const failures: unknown[] = [];
    for (let i = this.attached.length - 1; i >= 0; i--) {
      try {
        this.attached[i].created.dispose();
      } catch (err) {
        failures.push(err);
      }
      this.release(this.owned[i]);
    }
    if (failures.length > 0) throw new DeviceManagerError('EDISPOSE', `Disposing the devices failed: ${failures.map((e) => (e as Error).message).join('; ')}`, failures[0]);
  }

  private release(owned: Owned): void {
    for (const w of owned.watches) w.close();
    for (const fd of owned.queueFds) this.shim.close(fd);
    owned.irq.close();
  }
}
