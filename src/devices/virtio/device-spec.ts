/**
 * How a kind of virtio device plugs into the VMM: a spec turns the VM's configuration into
 * devices. The VMM's device manager (src/vmm/device-manager.ts) iterates the registered specs
 * (src/vmm/device-registry.ts) in a fixed order and gives each device a virtio-mmio slot, a GSI,
 * ioeventfds and an irqfd; nothing else in the VMM names a device type.
 */
import type { DriveConfig } from '../../config/drive';
import type { BalloonDeviceConfig } from './balloon/spec';
import type { EntropyConfig } from '../../config/entropy';
import type { NetworkInterfaceConfig } from '../../config/network-interface';
import type { NetMmdsConfig } from './net/spec';
import type { VsockConfig } from '../../config/vsock';
import type { DeviceContext } from './device-context';
import type { VirtioDevice } from './device';

/** The device sections of a VM's configuration (a later device issue adds its own field). */
export interface DeviceConfigs {
  drives?: readonly DriveConfig[];
  entropy?: EntropyConfig;
  networkInterfaces?: readonly NetworkInterfaceConfig[];
  /** The VM's metadata service and which interfaces carry it. */
  mmds?: NetMmdsConfig;
  vsock?: VsockConfig;
  balloon?: BalloonDeviceConfig;
}

/** Cumulative counters of one device, in Firecracker's metrics names. */
export type DeviceCounters = Record<string, number>;

/** One device made from one configuration entry. */
export interface CreatedDevice {
  /** The API's name of this device (a drive_id, an iface_id; `rng` for the entropy device). */
  readonly id: string;
  readonly device: VirtioDevice;
  /** The device's group in the metrics line (Firecracker's: `block_<id>`, `entropy`, ...). */
  readonly metricsGroup: string;
  /** Cumulative counters; the metrics system reports their differences, except for `gauges`. */
  metrics(): DeviceCounters;
  /** Counters that are levels, not totals (reported as they are). */
  readonly gauges?: readonly string[];
  /** Kernel command-line parameters this device needs beyond its virtio_mmio.device= (e.g. root=). */
  readonly cmdline?: string;
  /** Must sit in the first slot (the root drive: the guest names it /dev/vda). */
  readonly firstSlot?: boolean;
  /** A PATCH after boot; throws, changing nothing, when the update cannot be applied. */
  update?(update: unknown): void;
  /** The VM paused or resumed: a device with a host backend (a TAP) stops reading it while paused. */
  setPaused?(paused: boolean): void;
  /** Stops timers and backends and closes host files; the manager calls it once. */
  dispose(): void;
  /** Called once per snapshot, before save(): vsock drops its host connections and tells the driver. */
  prepareSave?(): void;
  /** For a snapshot of the paused VM (absent: nothing in flight, nothing held, no own state). */
  save?(): DeviceSnapshot;
  /** Puts back a saved `state` on the fresh device of a restore, before its transport is restored. */
  restore?(state: unknown): void;
}

/** What a device tells a snapshot. */
export interface DeviceSnapshot {
  /** Requests still running on the host (async I/O): the snapshot waits until there are none. */
  inFlight: number;
  /** Per queue, chains popped but held back (rate-limited): they are popped again after a restore. */
  heldChains?: number[];
  /** The device's own state, as plain data (JSON with Buffers and bigints). */
  state?: unknown;
}

export interface VirtioDeviceSpec<C = unknown> {
  /** The device type as Firecracker names it: `block`, `net`, `vsock`, `balloon`, `rng`. */
  readonly type: string;
  /** The configured devices of this type, in attach order. */
  instances(config: DeviceConfigs): readonly C[];
  create(config: C, ctx: DeviceContext): CreatedDevice;
  /**
   * A config-file section attaching one such device, made with files under `scratchDir`: the
   * build's code-cache training run (src/build/train-code-cache.ts) boots a VM with every
   * device so that their code is in the cache. Undefined: none can be made on this host.
   */
  trainingSection?(scratchDir: string): { section: string; value: unknown } | undefined;
}
