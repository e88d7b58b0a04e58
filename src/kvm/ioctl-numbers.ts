/**
 * KVM ioctl request numbers, computed as linux/ioctl.h's _IOC macros do
 * (dir << 30 | size << 16 | type << 8 | nr), from include/uapi/linux/kvm.h.
 */
const KVMIO = 0xae;
const NONE = 0;
const WRITE = 1;
const READ = 2;

function ioc(dir: number, nr: number, size: number): number {
  return ((dir << 30) | (size << 16) | (KVMIO << 8) | nr) >>> 0;
}
const io = (nr: number) => ioc(NONE, nr, 0);
const ior = (nr: number, size: number) => ioc(READ, nr, size);
const iow = (nr: number, size: number) => ioc(WRITE, nr, size);
const iowr = (nr: number, size: number) => ioc(READ | WRITE, nr, size);

/** Struct sizes (bytes) that are part of the request numbers. */
export const SIZE = {
  cpuid2Header: 8,
  msrsHeader: 8,
  msrList: 4,
  userspaceMemoryRegion: 32,
  irqLevel: 8,
  pitConfig: 64,
  irqfd: 32,
  ioeventfd: 64,
  coalescedZone: 16,
  regs: 144,
  sregs: 312,
  fpu: 416,
  lapic: 1024,
  u64: 8,
  // vCPU and VM state (the snapshot's), sizes from arch/x86/include/uapi/asm/kvm.h
  cpuid2: 8,
  mpState: 4,
  vcpuEvents: 64,
  debugregs: 128,
  xsave: 4096,
  xcrs: 392,
  irqchip: 520,
  pitState2: 112,
  clockData: 48,
  dirtyLog: 16,
} as const;

export const KVM = {
  GET_API_VERSION: io(0x00),
  CREATE_VM: io(0x01),
  GET_MSR_INDEX_LIST: iowr(0x02, SIZE.msrList),
  CHECK_EXTENSION: io(0x03),
  GET_VCPU_MMAP_SIZE: io(0x04),
  GET_SUPPORTED_CPUID: iowr(0x05, SIZE.cpuid2Header),
  CREATE_VCPU: io(0x41),
  SET_USER_MEMORY_REGION: iow(0x46, SIZE.userspaceMemoryRegion),
  SET_TSS_ADDR: io(0x47),
  SET_IDENTITY_MAP_ADDR: iow(0x48, SIZE.u64),
  CREATE_IRQCHIP: io(0x60),
  IRQ_LINE: iow(0x61, SIZE.irqLevel),
  REGISTER_COALESCED_MMIO: iow(0x67, SIZE.coalescedZone),
  UNREGISTER_COALESCED_MMIO: iow(0x68, SIZE.coalescedZone),
  IRQFD: iow(0x76, SIZE.irqfd),
  CREATE_PIT2: iow(0x77, SIZE.pitConfig),
  IOEVENTFD: iow(0x79, SIZE.ioeventfd),
  RUN: io(0x80),
  GET_REGS: ior(0x81, SIZE.regs),
  SET_REGS: iow(0x82, SIZE.regs),
  GET_SREGS: ior(0x83, SIZE.sregs),
  SET_SREGS: iow(0x84, SIZE.sregs),
  GET_MSRS: iowr(0x88, SIZE.msrsHeader),
  SET_MSRS: iow(0x89, SIZE.msrsHeader),
  GET_FPU: ior(0x8c, SIZE.fpu),
  SET_FPU: iow(0x8d, SIZE.fpu),
  GET_LAPIC: ior(0x8e, SIZE.lapic),
  SET_LAPIC: iow(0x8f, SIZE.lapic),
  SET_CPUID2: iow(0x90, SIZE.cpuid2Header),
  GET_CPUID2: iowr(0x91, SIZE.cpuid2Header),
  GET_DIRTY_LOG: iow(0x42, SIZE.dirtyLog),
  GET_IRQCHIP: iowr(0x62, SIZE.irqchip),
  // Not a typo: kvm.h declares KVM_SET_IRQCHIP with _IOR.
  SET_IRQCHIP: ior(0x63, SIZE.irqchip),
  SET_CLOCK: iow(0x7b, SIZE.clockData),
  GET_CLOCK: ior(0x7c, SIZE.clockData),
  GET_MP_STATE: ior(0x98, SIZE.mpState),
  SET_MP_STATE: iow(0x99, SIZE.mpState),
  GET_PIT2: ior(0x9f, SIZE.pitState2),
  SET_PIT2: iow(0xa0, SIZE.pitState2),
  GET_VCPU_EVENTS: ior(0x9f, SIZE.vcpuEvents),
  SET_VCPU_EVENTS: iow(0xa0, SIZE.vcpuEvents),
  GET_DEBUGREGS: ior(0xa1, SIZE.debugregs),
  SET_DEBUGREGS: iow(0xa2, SIZE.debugregs),
  SET_TSC_KHZ: io(0xa2),
  GET_TSC_KHZ: io(0xa3),
  GET_XSAVE: ior(0xa4, SIZE.xsave),
  SET_XSAVE: iow(0xa5, SIZE.xsave),
  GET_XCRS: ior(0xa6, SIZE.xcrs),
  SET_XCRS: iow(0xa7, SIZE.xcrs),
  KVMCLOCK_CTRL: io(0xad),
} as const;

/** KVM_CAP_* numbers used by the VMM (include/uapi/linux/kvm.h). */
export const KVM_CAP = {
  IRQCHIP: 0,
  USER_MEMORY: 3,
  SET_TSS_ADDR: 4,
  EXT_CPUID: 7,
  COALESCED_MMIO: 15,
  NR_VCPUS: 9,
  PIT2: 33,
  IRQFD: 32,
  IOEVENTFD: 36,
  MAX_VCPUS: 66,
  IMMEDIATE_EXIT: 136,
  COALESCED_PIO: 162,
  ADJUST_CLOCK: 39,
  VCPU_EVENTS: 41,
  DEBUGREGS: 50,
  XSAVE: 55,
  XCRS: 56,
  TSC_CONTROL: 60,
  GET_TSC_KHZ: 61,
  KVMCLOCK_CTRL: 76,
} as const;

export const KVM_API_VERSION = 12;
