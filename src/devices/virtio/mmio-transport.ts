/**
 * The virtio-mmio version 2 transport (spec 4.2): one 4 KiB register window per device.
 * Control registers are 32-bit; an access of another width or alignment is ignored with a
 * warning (spec 4.2.2.2 forbids it). Nothing a guest does here throws out of read() or write():
 * errors are logged, and the ones that leave a queue or the device unusable set
 * DEVICE_NEEDS_RESET and raise a configuration-change interrupt (spec 2.1.2).
 */
import { GuestMemory } from '../../memory/guest-memory';
import type { BusDevice, InterruptLine } from '../bus';
import {
  Interrupt, MAX_QUEUE_SIZE, MMIO_MAGIC, MMIO_VENDOR_ID, MMIO_VERSION, MmioReg, Status,
} from './constants';
import { VirtioDevice, VirtioInterrupt } from './device';
import { featureRefusal, featuresWord, offeredFeatures, withFeaturesWord } from './features';
import { GuestTriggeredLog, LogSink } from './guest-log';
import { Queue, QueueState } from './queue';
import { SparklerError } from '../../errors';
import { applyStatusWrite } from './status';

export interface MmioTransportOptions {
  /** Used in log lines, e.g. "virtio-rng". */
  name?: string;
  log?: LogSink;
}

/** MmioTransport.saveState's plain data. */
export interface TransportState {
  statusBits: number; isr: number; generation: number; acked: bigint;
  deviceFeaturesSel: number; driverFeaturesSel: number; queueSel: number; active: boolean;
  queues: QueueState[];
}

export class MmioTransport implements BusDevice {
  readonly queues: readonly Queue[];
  readonly offered: bigint;
  readonly name: string;
  private readonly log: LogSink;
  private statusBits = 0;
  private isr = 0;
  private generation = 0;
  private acked = 0n;
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private queueSel = 0;
  private active = false;

  /** What the device signals through; the transport's own notifyQueue uses it too. */
  private readonly interrupt: VirtioInterrupt = {
    signalUsed: (queue) => { if (queue.needsNotification()) this.raise(Interrupt.USED_BUFFER); },
    forceUsedInterrupt: () => this.raise(Interrupt.USED_BUFFER),
    signalConfigChange: () => {
      this.generation = (this.generation + 1) >>> 0;
      if (this.statusBits & Status.DRIVER_OK) this.raise(Interrupt.CONFIG_CHANGE);
    },
  };

  constructor(
    readonly device: VirtioDevice,
    private readonly memory: GuestMemory,
    private readonly line: InterruptLine,
    opts: MmioTransportOptions = {},
  ) {
    this.name = opts.name ?? `virtio device type ${device.deviceType}`;
    this.log = opts.log ?? new GuestTriggeredLog();
    this.offered = offeredFeatures(device.features);
    this.queues = device.queueMaxSizes.map((max, i) => {
      if (!Number.isInteger(max) || max < 1 || max > MAX_QUEUE_SIZE || (max & (max - 1)) !== 0) {
        throw new RangeError(`${this.name} asks for queue ${i} of size ${max}, not a power of two up to ${MAX_QUEUE_SIZE}.`);
      }
      return new Queue(max);
    });
  }

  get status(): number { return this.statusBits; }
  get interruptStatus(): number { return this.isr; }
  get configGeneration(): number { return this.generation; }
  get ackedFeatures(): bigint { return this.acked; }
  get activated(): boolean { return this.active; }

  read(offset: number, data: Buffer): void {
    try {
      data.fill(0);
      if (offset >= MmioReg.CONFIG) return this.device.readConfig(offset - MmioReg.CONFIG, data);
      if (data.length !== 4 || offset % 4 !== 0) {
        return this.log.warn(`${this.name}: ignoring a ${data.length}-byte read at register offset 0x${offset.toString(16)}; registers are 32-bit.`);
      }
      data.writeUInt32LE(this.readRegister(offset) >>> 0, 0);
    } catch (err) {
      data.fill(0);
      this.log.error(`${this.name}: a read at offset 0x${offset.toString(16)} failed: ${(err as Error).message}`);
    }
  }

  write(offset: number, data: Buffer): void {
    try {
      if (offset >= MmioReg.CONFIG) return this.device.writeConfig(offset - MmioReg.CONFIG, data);
      if (data.length !== 4 || offset % 4 !== 0) {
        return this.log.warn(`${this.name}: ignoring a ${data.length}-byte write at register offset 0x${offset.toString(16)}; registers are 32-bit.`);
      }
      this.writeRegister(offset, data.readUInt32LE(0));
    } catch (err) {
      this.log.error(`${this.name}: a write at offset 0x${offset.toString(16)} failed: ${(err as Error).message}`);
    }
  }

  /**
   * The driver notified queue `index`: from a QueueNotify write (slow path) or, in production,
   * when the ioeventfd registered on queueNotifyAddress() with datamatch = index fires.
   */
  notifyQueue(index: number): void {
    if (!this.active) return this.log.warn(`${this.name}: ignoring a notification of queue ${index} before DRIVER_OK.`);
    const queue = this.queues[index];
    if (queue === undefined) return this.log.warn(`${this.name}: ignoring a notification of queue ${index}, which does not exist.`);
    try {
      this.device.processQueue(index);
    } catch (err) {
      this.needsReset(`the device failed while processing queue ${index}: ${(err as Error).message}`);
    }
    // Chains that pop() dropped were returned to the driver even if the device added nothing.
    this.interrupt.signalUsed(queue);
  }

  private readRegister(offset: number): number {
    const q = this.queues[this.queueSel];
    switch (offset) {
      case MmioReg.MAGIC_VALUE: return MMIO_MAGIC;
      case MmioReg.VERSION: return MMIO_VERSION;
      case MmioReg.DEVICE_ID: return this.device.deviceType;
      case MmioReg.VENDOR_ID: return MMIO_VENDOR_ID;
      case MmioReg.DEVICE_FEATURES: return featuresWord(this.offered, this.deviceFeaturesSel);
      case MmioReg.QUEUE_NUM_MAX: return q?.maxSize ?? 0; // 0: no such queue (spec 4.2.2)
      case MmioReg.QUEUE_READY: return q?.ready ? 1 : 0;
      case MmioReg.INTERRUPT_STATUS: return this.isr;
      case MmioReg.STATUS: return this.statusBits;
      case MmioReg.CONFIG_GENERATION: return this.generation;
      case MmioReg.QUEUE_DESC_LOW: return Number((q?.descTable ?? 0n) & 0xffff_ffffn);
      case MmioReg.QUEUE_DESC_HIGH: return Number((q?.descTable ?? 0n) >> 32n);
      case MmioReg.QUEUE_DRIVER_LOW: return Number((q?.availRing ?? 0n) & 0xffff_ffffn);
      case MmioReg.QUEUE_DRIVER_HIGH: return Number((q?.availRing ?? 0n) >> 32n);
      case MmioReg.QUEUE_DEVICE_LOW: return Number((q?.usedRing ?? 0n) & 0xffff_ffffn);
      case MmioReg.QUEUE_DEVICE_HIGH: return Number((q?.usedRing ?? 0n) >> 32n);
      // No shared memory regions: their length and base read as all ones (spec 4.2.2).
      case MmioReg.SHM_LEN_LOW: case MmioReg.SHM_LEN_HIGH: case MmioReg.SHM_BASE_LOW: case MmioReg.SHM_BASE_HIGH:
        return 0xffff_ffff;
      case MmioReg.DEVICE_FEATURES_SEL: case MmioReg.DRIVER_FEATURES: case MmioReg.DRIVER_FEATURES_SEL:
      case MmioReg.QUEUE_SEL: case MmioReg.QUEUE_NUM: case MmioReg.QUEUE_NOTIFY: case MmioReg.INTERRUPT_ACK:
      case MmioReg.SHM_SEL: case MmioReg.QUEUE_RESET:
        return 0; // write-only, or (QueueReset) a feature we do not offer
      default:
        this.log.warn(`${this.name}: read of unknown register offset 0x${offset.toString(16)}.`);
        return 0;
    }
  }

  private writeRegister(offset: number, value: number): void {
    switch (offset) {
      case MmioReg.DEVICE_FEATURES_SEL: this.deviceFeaturesSel = value; return;
      case MmioReg.DRIVER_FEATURES_SEL: this.driverFeaturesSel = value; return;
      case MmioReg.DRIVER_FEATURES:
        // Only between DRIVER and FEATURES_OK (spec 3.1.1 steps 3-5).
        if ((this.statusBits & (Status.DRIVER | Status.FEATURES_OK | Status.FAILED)) !== Status.DRIVER) {
          return this.log.warn(`${this.name}: ignoring a DriverFeatures write in status 0x${this.statusBits.toString(16)}.`);
        }
        this.acked = withFeaturesWord(this.acked, this.driverFeaturesSel, value);
        return;
      case MmioReg.QUEUE_SEL: this.queueSel = value; return;
      case MmioReg.QUEUE_NUM: return this.configureQueue('QueueNum', (q) => { q.size = value; });
      case MmioReg.QUEUE_READY: return this.configureQueue('QueueReady', (q) => { q.ready = value === 1; }, true);
      case MmioReg.QUEUE_DESC_LOW: return this.configureQueue('QueueDescLow', (q) => { q.descTable = low(q.descTable, value); });
      case MmioReg.QUEUE_DESC_HIGH: return this.configureQueue('QueueDescHigh', (q) => { q.descTable = high(q.descTable, value); });
      case MmioReg.QUEUE_DRIVER_LOW: return this.configureQueue('QueueDriverLow', (q) => { q.availRing = low(q.availRing, value); });
      case MmioReg.QUEUE_DRIVER_HIGH: return this.configureQueue('QueueDriverHigh', (q) => { q.availRing = high(q.availRing, value); });
      case MmioReg.QUEUE_DEVICE_LOW: return this.configureQueue('QueueDeviceLow', (q) => { q.usedRing = low(q.usedRing, value); });
      case MmioReg.QUEUE_DEVICE_HIGH: return this.configureQueue('QueueDeviceHigh', (q) => { q.usedRing = high(q.usedRing, value); });
      case MmioReg.QUEUE_NOTIFY: return this.notifyQueue(value);
      case MmioReg.INTERRUPT_ACK: this.isr &= ~value; return;
      case MmioReg.STATUS: return this.setStatus(value);
      case MmioReg.SHM_SEL: return;
      default:
        this.log.warn(`${this.name}: ignoring a write of 0x${value.toString(16)} to read-only or unknown register offset 0x${offset.toString(16)}.`);
    }
  }

  /**
   * Queue registers are writable after FEATURES_OK and before DRIVER_OK (spec 3.1.1 step 7),
   * and, but for QueueReady itself, only while the selected queue is not ready (spec 4.2.3.2).
   */
  private configureQueue(register: string, apply: (q: Queue) => void, isReady = false): void {
    const q = this.queues[this.queueSel];
    const s = this.statusBits;
    let why: string | undefined;
    if (q === undefined) why = `queue ${this.queueSel} does not exist`;
    else if ((s & (Status.FEATURES_OK | Status.DRIVER_OK)) !== Status.FEATURES_OK) why = `the status is 0x${s.toString(16)}`;
    else if (!isReady && q.ready) why = `queue ${this.queueSel} is ready`;
    if (why !== undefined || q === undefined) return this.log.warn(`${this.name}: ignoring a ${register} write: ${why}.`);
    apply(q);
  }

  /** Status writes go through the state machine in status.ts; 0 resets, DRIVER_OK activates. */
  private setStatus(value: number): void {
    const w = applyStatusWrite(this.statusBits, value, () => featureRefusal(this.offered, this.acked));
    for (const warning of w.warnings) this.log.warn(`${this.name}: ${warning}.`);
    if (w.reset) return this.reset();
    this.statusBits = w.status;
    if (w.activate) this.activate();
  }

  /**
   * The transport's registers and its queues, as plain data for a snapshot. `heldChains[i]`:
   * chains of queue i the device popped but has not completed and will not complete on its own
   * (a rate-limited request it holds); they are popped again after a restore.
   */
  saveState(heldChains: readonly number[] = []): TransportState {
    return {
      statusBits: this.statusBits, isr: this.isr, generation: this.generation, acked: this.acked,
      deviceFeaturesSel: this.deviceFeaturesSel, driverFeaturesSel: this.driverFeaturesSel, queueSel: this.queueSel, active: this.active,
      queues: this.queues.map((q, i) => q.saveState(heldChains[i] ?? 0)),
    };
  }

  /**
   * Puts a saved state back on a fresh transport (same device type, same queues), then, when the
   * driver had activated the device, activates it again over the restored queues and lets it look
   * at every queue once (a notification may have come in just before the snapshot).
   */
  restoreState(s: TransportState): void {
    if (s.queues.length !== this.queues.length) {
      throw new SparklerError('ESNAPSHOTDEVICE', `${this.name}: the snapshot has ${s.queues.length} queues for this device, which has ${this.queues.length}.`);
    }
    ({ statusBits: this.statusBits, isr: this.isr, generation: this.generation, acked: this.acked } = s);
    ({ deviceFeaturesSel: this.deviceFeaturesSel, driverFeaturesSel: this.driverFeaturesSel, queueSel: this.queueSel } = s);
    const host = { error: (m: string) => this.log.error(m), fatal: (m: string) => this.needsReset(m) };
    s.queues.forEach((q, i) => {
      const why = this.queues[i].restoreState(q, this.memory, this.acked, host, `${this.name} queue ${i}`);
      if (why !== undefined) throw new SparklerError('ESNAPSHOTDEVICE', `${this.name}: queue ${i} cannot be restored: ${why}.`);
    });
    if (!s.active) return;
    this.device.activate(this.memory, this.queues, this.interrupt, this.acked);
    this.active = true;
    this.queues.forEach((q, i) => { if (q.activated) this.device.processQueue(i); });
  }

  /**
   * On a restored transport, once the vCPUs have their saved state: raises the interrupt again
   * when the snapshot holds one the driver had not acknowledged. It was raised on the source
   * after KVM's interrupt state was saved (the vsock's transport-reset event is sent while the
   * snapshot is taken), so the restored guest never got it; and with event-idx the queue counts
   * it as signalled, so later used buffers of that queue raise nothing either.
   */
  redeliverPendingInterrupt(): void {
    if (this.active && this.isr !== 0) this.raise(this.isr);
  }

  /** DRIVER_OK: check every queue, map the rings, hand everything to the device. */
  private activate(): void {
    const host = { error: (m: string) => this.log.error(m), fatal: (m: string) => this.needsReset(m) };
    try {
      const required = this.device.requiredQueues?.(this.acked) ?? this.queues.length;
      for (const [i, q] of this.queues.entries()) {
        if (i >= required && !q.ready) continue; // an optional queue the driver left alone
        const why = q.validate(this.memory) ?? q.activate(this.memory, this.acked, host, `${this.name} queue ${i}`);
        if (why !== undefined) {
          for (const other of this.queues) other.deactivate();
          return this.needsReset(`queue ${i} cannot be used: ${why}`);
        }
      }
      this.device.activate(this.memory, this.queues, this.interrupt, this.acked);
      this.active = true;
    } catch (err) {
      for (const q of this.queues) q.deactivate();
      this.needsReset(`the device failed to activate: ${(err as Error).message}`);
    }
  }

  /** Writing 0 to Status (spec 4.2.2.1): back to the power-on state, queues included. */
  private reset(): void {
    if (this.active) {
      try {
        this.device.reset();
      } catch (err) {
        this.log.error(`${this.name}: the device failed to reset: ${(err as Error).message}`);
      }
    }
    this.active = false;
    this.statusBits = this.isr = 0;
    this.acked = 0n;
    this.deviceFeaturesSel = this.driverFeaturesSel = this.queueSel = 0;
    for (const q of this.queues) q.reset();
  }

  private needsReset(message: string): void {
    this.log.error(`${this.name}: ${message}. The device needs a reset.`);
    if (this.statusBits & Status.DEVICE_NEEDS_RESET) return;
    this.statusBits |= Status.DEVICE_NEEDS_RESET;
    // With DRIVER_OK set the driver learns about it through a config-change interrupt (spec 2.1.2).
    if (this.statusBits & Status.DRIVER_OK) this.raise(Interrupt.CONFIG_CHANGE);
  }

  private raise(bit: number): void {
    this.isr |= bit;
    try {
      this.line.trigger();
    } catch (err) {
      this.log.error(`${this.name}: raising its interrupt failed: ${(err as Error).message}`);
    }
  }
}

const low = (addr: bigint, value: number): bigint => (addr & ~0xffff_ffffn) | BigInt(value >>> 0);
const high = (addr: bigint, value: number): bigint => (addr & 0xffff_ffffn) | (BigInt(value >>> 0) << 32n);
