/**
 * A virtio-mmio driver for tests: register accesses as a guest makes them (32-bit, through the
 * BusDevice interface), and the initialisation sequence of spec 3.1.1 / 4.2.3 the way Linux's
 * virtio_mmio driver performs it.
 */
import type { BusDevice } from '../../bus';
import { FeatureBit, MmioReg, Status } from '../constants';
import { featureBit } from '../features';
import { MockQueue } from './mock-queue';

export class MockMmioDriver {
  constructor(readonly transport: BusDevice) {}

  read(offset: number): number {
    const data = Buffer.alloc(4);
    this.transport.read(offset, data);
    return data.readUInt32LE(0);
  }

  write(offset: number, value: number): void {
    const data = Buffer.alloc(4);
    data.writeUInt32LE(value >>> 0, 0);
    this.transport.write(offset, data);
  }

  get status(): number { return this.read(MmioReg.STATUS); }
  /** Adds `bits` to the status, as Linux's virtio_add_status() does. */
  addStatus(bits: number): void { this.write(MmioReg.STATUS, this.status | bits); }

  deviceFeatures(): bigint {
    this.write(MmioReg.DEVICE_FEATURES_SEL, 1);
    const hi = this.read(MmioReg.DEVICE_FEATURES);
    this.write(MmioReg.DEVICE_FEATURES_SEL, 0);
    return (BigInt(hi) << 32n) | BigInt(this.read(MmioReg.DEVICE_FEATURES));
  }

  writeDriverFeatures(features: bigint): void {
    this.write(MmioReg.DRIVER_FEATURES_SEL, 1);
    this.write(MmioReg.DRIVER_FEATURES, Number(features >> 32n));
    this.write(MmioReg.DRIVER_FEATURES_SEL, 0);
    this.write(MmioReg.DRIVER_FEATURES, Number(features & 0xffff_ffffn));
  }

  /** ACKNOWLEDGE, DRIVER, features, FEATURES_OK; returns whether the device kept FEATURES_OK. */
  negotiate(accept: (offered: bigint) => bigint = (f) => f): boolean {
    this.write(MmioReg.STATUS, 0);
    this.addStatus(Status.ACKNOWLEDGE);
    this.addStatus(Status.DRIVER);
    this.writeDriverFeatures(accept(this.deviceFeatures()));
    this.addStatus(Status.FEATURES_OK);
    return (this.status & Status.FEATURES_OK) !== 0;
  }

  /** Programs queue `index` with `queue`'s layout and size and sets QueueReady (spec 4.2.3.2). */
  setupQueue(index: number, queue: MockQueue): void {
    this.write(MmioReg.QUEUE_SEL, index);
    this.write(MmioReg.QUEUE_NUM, queue.size);
    const parts: Array<[number, number]> = [
      [MmioReg.QUEUE_DESC_LOW, queue.desc], [MmioReg.QUEUE_DRIVER_LOW, queue.avail], [MmioReg.QUEUE_DEVICE_LOW, queue.used],
    ];
    for (const [reg, addr] of parts) {
      this.write(reg, addr % 2 ** 32);
      this.write(reg + 4, Math.floor(addr / 2 ** 32));
    }
    this.write(MmioReg.QUEUE_READY, 1);
  }

  /** The whole sequence up to DRIVER_OK; returns the final status. */
  init(queues: MockQueue[], accept?: (offered: bigint) => bigint): number {
    if (!this.negotiate(accept)) return this.status;
    queues.forEach((q, i) => this.setupQueue(i, q));
    this.addStatus(Status.DRIVER_OK);
    return this.status;
  }

  notify(queue: number): void { this.write(MmioReg.QUEUE_NOTIFY, queue); }

  /** Reads and acknowledges InterruptStatus, as the guest's interrupt handler does. */
  ackInterrupt(): number {
    const isr = this.read(MmioReg.INTERRUPT_STATUS);
    this.write(MmioReg.INTERRUPT_ACK, isr);
    return isr;
  }
}

/** Accept everything offered except the given feature bits. */
export function without(...bits: number[]): (offered: bigint) => bigint {
  return (offered) => bits.reduce((f, b) => f & ~featureBit(b), offered);
}

export const NO_EVENT_IDX = without(FeatureBit.RING_EVENT_IDX);
