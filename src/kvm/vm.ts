import { native, NativeShim } from '../native';
import { check, ioctl } from './check';
import { KVM, SIZE } from './ioctl-numbers';
import type { Kvm } from './kvm';
import { encodeIoeventfd, encodeIrqfd, encodeMemoryRegion } from './structs';
import { VcpuFd } from './vcpu';
import { SparklerError } from '../errors';

function requireSize(state: Buffer, size: number, what: string): void {
  if (state.length !== size) throw new SparklerError('ESTATE', `${what} needs ${size} bytes of state, not ${state.length}.`);
}

/** kvm_irqchip.chip_id: the two 8259s and the IOAPIC. */
export const IRQCHIP = { PIC_MASTER: 0, PIC_SLAVE: 1, IOAPIC: 2 } as const;
/** kvm_userspace_memory_region.flags: have KVM log the pages the guest writes. */
export const KVM_MEM_LOG_DIRTY_PAGES = 1;
/** kvm_clock_data.flags */
export const KVM_CLOCK = { TSC_STABLE: 2, REALTIME: 4, HOST_TSC: 8 } as const;

/** struct kvm_clock_data: the VM's kvmclock (ns), and with KVM_CLOCK_REALTIME the host's wall clock then. */
export interface ClockData {
  clock: bigint;
  flags: number;
  realtime: bigint;
  hostTsc: bigint;
}

/** KVM_IOEVENTFD flags */
export const IOEVENTFD_FLAG = { DATAMATCH: 1, PIO: 2, DEASSIGN: 4 } as const;
/** kvm_pit_config.flags: the PIT's speaker port is left to the VMM (as Firecracker does) */
const KVM_PIT_SPEAKER_DUMMY = 1;

/** A VM fd: memory slots, interrupt controller, eventfds, vCPU creation. One method per ioctl. */
export class VmFd {
  constructor(readonly fd: number, readonly kvm: Kvm, private readonly shim: NativeShim = native()) {}

  setUserMemoryRegion(slot: number, guestPhys: number, size: number, hostAddress: bigint, flags = 0): void {
    const region = encodeMemoryRegion(slot, flags, guestPhys, size, hostAddress);
    check(ioctl(this.shim, this.fd, KVM.SET_USER_MEMORY_REGION, region), `KVM_SET_USER_MEMORY_REGION (slot ${slot})`);
  }

  setTssAddress(address: number): void {
    check(ioctl(this.shim, this.fd, KVM.SET_TSS_ADDR, address), 'KVM_SET_TSS_ADDR');
  }

  setIdentityMapAddress(address: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(address));
    check(ioctl(this.shim, this.fd, KVM.SET_IDENTITY_MAP_ADDR, b), 'KVM_SET_IDENTITY_MAP_ADDR');
  }

  createIrqchip(): void {
    check(ioctl(this.shim, this.fd, KVM.CREATE_IRQCHIP, 0), 'KVM_CREATE_IRQCHIP');
  }

  createPit2(): void {
    const config = Buffer.alloc(64);
    config.writeUInt32LE(KVM_PIT_SPEAKER_DUMMY, 0);
    check(ioctl(this.shim, this.fd, KVM.CREATE_PIT2, config), 'KVM_CREATE_PIT2');
  }

  /** KVM_IRQ_LINE: struct kvm_irq_level { u32 irq; u32 level; } */
  irqLine(irq: number, level: boolean): void {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(irq, 0);
    b.writeUInt32LE(level ? 1 : 0, 4);
    check(ioctl(this.shim, this.fd, KVM.IRQ_LINE, b), 'KVM_IRQ_LINE');
  }

  registerIrqfd(eventFd: number, gsi: number): void {
    check(ioctl(this.shim, this.fd, KVM.IRQFD, encodeIrqfd(eventFd, gsi)), `KVM_IRQFD (gsi ${gsi})`);
  }

  registerIoeventfd(address: number, length: number, eventFd: number, flags = 0, datamatch = 0n): void {
    const b = encodeIoeventfd(address, length, eventFd, flags, datamatch);
    check(ioctl(this.shim, this.fd, KVM.IOEVENTFD, b), `KVM_IOEVENTFD (0x${address.toString(16)})`);
  }

  /**
   * KVM_(UN)REGISTER_COALESCED_MMIO with pio=1: guest writes to ports [port, port + size) are
   * queued in the coalesced ring (coalesced-ring.ts) instead of exiting; reads still exit.
   */
  setCoalescedPio(port: number, size: number, on: boolean): void {
    const zone = Buffer.alloc(SIZE.coalescedZone);
    zone.writeBigUInt64LE(BigInt(port), 0);
    zone.writeUInt32LE(size, 8);
    zone.writeUInt32LE(1, 12); // pio
    const request = on ? KVM.REGISTER_COALESCED_MMIO : KVM.UNREGISTER_COALESCED_MMIO;
    check(ioctl(this.shim, this.fd, request, zone), `KVM_${on ? '' : 'UN'}REGISTER_COALESCED_MMIO (port 0x${port.toString(16)})`);
  }

  /** struct kvm_irqchip for one chip (IRQCHIP.*): chip_id, pad, then the chip's 512-byte state. */
  getIrqchip(chipId: number): Buffer {
    const b = Buffer.alloc(SIZE.irqchip);
    b.writeUInt32LE(chipId, 0);
    check(ioctl(this.shim, this.fd, KVM.GET_IRQCHIP, b), `KVM_GET_IRQCHIP (chip ${chipId})`);
    return b;
  }

  setIrqchip(state: Buffer): void {
    requireSize(state, SIZE.irqchip, 'KVM_SET_IRQCHIP');
    check(ioctl(this.shim, this.fd, KVM.SET_IRQCHIP, state), `KVM_SET_IRQCHIP (chip ${state.readUInt32LE(0)})`);
  }

  getPit2(): Buffer {
    const b = Buffer.alloc(SIZE.pitState2);
    check(ioctl(this.shim, this.fd, KVM.GET_PIT2, b), 'KVM_GET_PIT2');
    return b;
  }

  setPit2(state: Buffer): void {
    requireSize(state, SIZE.pitState2, 'KVM_SET_PIT2');
    check(ioctl(this.shim, this.fd, KVM.SET_PIT2, state), 'KVM_SET_PIT2');
  }

  getClock(): ClockData {
    const b = Buffer.alloc(SIZE.clockData);
    check(ioctl(this.shim, this.fd, KVM.GET_CLOCK, b), 'KVM_GET_CLOCK');
    return { clock: b.readBigUInt64LE(0), flags: b.readUInt32LE(8), realtime: b.readBigUInt64LE(16), hostTsc: b.readBigUInt64LE(24) };
  }

  /** KVM_SET_CLOCK; flags may carry KVM_CLOCK.REALTIME to advance by the wall time since `realtime`. */
  setClock(data: Pick<ClockData, 'clock' | 'flags' | 'realtime'>): void {
    const b = Buffer.alloc(SIZE.clockData);
    b.writeBigUInt64LE(data.clock, 0);
    b.writeUInt32LE(data.flags, 8);
    b.writeBigUInt64LE(data.realtime, 16);
    check(ioctl(this.shim, this.fd, KVM.SET_CLOCK, b), 'KVM_SET_CLOCK');
  }

  /**
   * KVM_GET_DIRTY_LOG: fills `bitmap` (one bit per 4 KiB page of the slot, in u64 words) with the
   * pages written since the last call, and clears KVM's log. The slot must log dirty pages.
   */
  getDirtyLog(slot: number, bitmap: Uint8Array): void {
    const b = Buffer.alloc(SIZE.dirtyLog);
    b.writeUInt32LE(slot, 0);
    b.writeBigUInt64LE(this.shim.addressOf(bitmap), 8);
    check(ioctl(this.shim, this.fd, KVM.GET_DIRTY_LOG, b), `KVM_GET_DIRTY_LOG (slot ${slot})`);
  }

  createVcpu(id: number, runMmapSize: number): VcpuFd {
    const fd = check(ioctl(this.shim, this.fd, KVM.CREATE_VCPU, id), `KVM_CREATE_VCPU (${id})`);
    return VcpuFd.fromFd(fd, id, runMmapSize, this.shim);
  }

  close(): void {
    this.shim.close(this.fd);
  }
}
