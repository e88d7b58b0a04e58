/**
 * What a virtio device implements to sit behind a transport (virtio-mmio today). The transport
 * owns everything generic: registers, feature negotiation, the status state machine, queue
 * configuration and validation, interrupts. A device owns its config space and its queues' work.
 */
import { GuestMemory } from '../../memory/guest-memory';
import { Queue } from './queue';

/** How a device tells the driver about used buffers and configuration changes. */
export interface VirtioInterrupt {
  /**
   * Raise a used-buffer interrupt for `queue` if the driver wants one for the entries added
   * since the last call (notification suppression, spec 2.7.7). Call after a batch of addUsed().
   */
  signalUsed(queue: Queue): void;
  /** The config space changed: bump ConfigGeneration and raise a config-change interrupt (spec 2.5.1). */
  signalConfigChange(): void;
  /**
   * Raise a used-buffer interrupt whatever the driver's suppression says. For after a restore:
   * an interrupt raised on the source after KVM's interrupt state was saved never reached the
   * guest, and its used_event still waits for it, so a suppressed signal would never come.
   */
  forceUsedInterrupt?(): void;
}

export interface VirtioDevice {
  /** DeviceID (spec 5): one of DeviceType. */
  readonly deviceType: number;
  /** One entry per queue: its maximum size (QueueNumMax), a power of two <= MAX_QUEUE_SIZE. */
  readonly queueMaxSizes: readonly number[];
  /**
   * Device-specific feature bits (below bit 24, or above 41). The transport adds VERSION_1,
   * EVENT_IDX and INDIRECT_DESC itself.
   */
  readonly features: bigint;

  /**
   * How many queues, from index 0, the driver must make ready before DRIVER_OK given the
   * features it accepted (default: all). Later queues are optional: used only if made ready
   * (e.g. a control queue whose feature was not negotiated).
   */
  requiredQueues?(features: bigint): number;

  /** Fill `data` from the config space at `offset`; bytes past its end read as 0 (see readConfigBytes). */
  readConfig(offset: number, data: Buffer): void;
  /** A driver write to the config space; most devices ignore it. */
  writeConfig(offset: number, data: Buffer): void;

  /**
   * The driver set DRIVER_OK and every queue is valid: start work. `features` is what the
   * driver accepted. A throw is caught by the transport and marks the device as needing reset.
   */
  activate(memory: GuestMemory, queues: readonly Queue[], interrupt: VirtioInterrupt, features: bigint): void;
  /** The driver reset the device: drop the queues and any in-flight work; activate() may follow again. */
  reset(): void;
  /**
   * The driver notified queue `index` (a QueueNotify write or its ioeventfd). Pop chains, add
   * used entries, then call interrupt.signalUsed(queue).
   */
  processQueue(index: number): void;
}

/** Copies the config space bytes at `offset` into `data`, zero past the end (spec 2.5: reads of unknown fields). */
export function readConfigBytes(config: Uint8Array, offset: number, data: Buffer): void {
  data.fill(0);
  if (offset < 0 || offset >= config.length) return;
  data.set(config.subarray(offset, Math.min(config.length, offset + data.length)));
}
