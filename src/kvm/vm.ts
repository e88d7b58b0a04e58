import { native, NativeShim } from '../native';
import { check, ioctl } from './check';
import { KVM, SIZE } from './ioctl-numbers';
import type { Kvm } from './kvm';
import { encodeIoeventfd, encodeIrqfd, encodeMemoryRegion } from './structs';
import { VcpuFd } from './vcpu';

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

  createVcpu(id: number, runMmapSize: number): VcpuFd {
    const fd = check(ioctl(this.shim, this.fd, KVM.CREATE_VCPU, id), `KVM_CREATE_VCPU (${id})`);
    return VcpuFd.fromFd(fd, id, runMmapSize, this.shim);
  }

  close(): void {
    this.shim.close(this.fd);
  }
}
