/**
 * Encoders and decoders between the plain values of src/arch/x86_64/types.ts and KVM's C
 * structs (include/uapi/linux/kvm.h, arch/x86/include/uapi/asm/kvm.h; offsets checked with
 * offsetof on x86_64).
 */
import { CpuidEntry, MsrEntry, X86DescriptorTable, X86Fpu, X86Regs, X86Segment, X86Sregs } from '../arch/x86_64/types';
import { SIZE } from './ioctl-numbers';

const REG_ORDER: (keyof X86Regs)[] = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags',
];

export function encodeRegs(regs: X86Regs): Buffer {
  const b = Buffer.alloc(SIZE.regs);
  REG_ORDER.forEach((name, i) => b.writeBigUInt64LE(BigInt.asUintN(64, regs[name]), i * 8));
  return b;
}

export function decodeRegs(b: Buffer): X86Regs {
  const out = {} as X86Regs;
  REG_ORDER.forEach((name, i) => { out[name] = b.readBigUInt64LE(i * 8); });
  return out;
}

const SEGMENT_SIZE = 24;
const SEGMENT_ORDER = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;
const SREGS_GDT = 192;
const SREGS_IDT = 208;
const SREGS_CR = 224; // cr0, cr2, cr3, cr4, cr8, efer, apic_base: consecutive u64s
const CR_ORDER = ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer', 'apicBase'] as const;

function encodeSegment(s: X86Segment, b: Buffer, at: number): void {
  b.writeBigUInt64LE(s.base, at);
  b.writeUInt32LE(s.limit >>> 0, at + 8);
  b.writeUInt16LE(s.selector, at + 12);
  b.writeUInt8(s.type, at + 14);
  b.writeUInt8(s.present, at + 15);
  b.writeUInt8(s.dpl, at + 16);
  b.writeUInt8(s.db, at + 17);
  b.writeUInt8(s.s, at + 18);
  b.writeUInt8(s.l, at + 19);
  b.writeUInt8(s.g, at + 20);
  b.writeUInt8(s.avl, at + 21);
  b.writeUInt8(s.unusable, at + 22);
}

function decodeSegment(b: Buffer, at: number): X86Segment {
  return {
    base: b.readBigUInt64LE(at), limit: b.readUInt32LE(at + 8), selector: b.readUInt16LE(at + 12),
    type: b[at + 14], present: b[at + 15], dpl: b[at + 16], db: b[at + 17], s: b[at + 18],
    l: b[at + 19], g: b[at + 20], avl: b[at + 21], unusable: b[at + 22],
  };
}

function encodeDtable(t: X86DescriptorTable, b: Buffer, at: number): void {
  b.writeBigUInt64LE(t.base, at);
  b.writeUInt16LE(t.limit, at + 8);
}

/** Encodes sregs over `base` (what KVM_GET_SREGS returned), keeping the interrupt bitmap. */
export function encodeSregs(sregs: X86Sregs, base?: Buffer): Buffer {
  const b = base ? Buffer.from(base) : Buffer.alloc(SIZE.sregs);
  SEGMENT_ORDER.forEach((name, i) => encodeSegment(sregs[name], b, i * SEGMENT_SIZE));
  encodeDtable(sregs.gdt, b, SREGS_GDT);
  encodeDtable(sregs.idt, b, SREGS_IDT);
  CR_ORDER.forEach((name, i) => b.writeBigUInt64LE(sregs[name], SREGS_CR + i * 8));
  return b;
}

export function decodeSregs(b: Buffer): X86Sregs {
  const out = {} as X86Sregs;
  SEGMENT_ORDER.forEach((name, i) => { out[name] = decodeSegment(b, i * SEGMENT_SIZE); });
  out.gdt = { base: b.readBigUInt64LE(SREGS_GDT), limit: b.readUInt16LE(SREGS_GDT + 8) };
  out.idt = { base: b.readBigUInt64LE(SREGS_IDT), limit: b.readUInt16LE(SREGS_IDT + 8) };
  CR_ORDER.forEach((name, i) => { out[name] = b.readBigUInt64LE(SREGS_CR + i * 8); });
  return out;
}

const FPU_FCW = 128;
const FPU_MXCSR = 408;

export function encodeFpu(fpu: X86Fpu): Buffer {
  const b = Buffer.alloc(SIZE.fpu);
  b.writeUInt16LE(fpu.fcw, FPU_FCW);
  b.writeUInt32LE(fpu.mxcsr, FPU_MXCSR);
  return b;
}

const MSR_ENTRY_SIZE = 16;

/** struct kvm_msrs with its entries; for KVM_GET_MSRS pass data 0n and read back. */
export function encodeMsrs(entries: MsrEntry[]): Buffer {
  const b = Buffer.alloc(SIZE.msrsHeader + entries.length * MSR_ENTRY_SIZE);
  b.writeUInt32LE(entries.length, 0);
  entries.forEach((e, i) => {
    const at = SIZE.msrsHeader + i * MSR_ENTRY_SIZE;
    b.writeUInt32LE(e.index >>> 0, at);
    b.writeBigUInt64LE(BigInt.asUintN(64, e.data), at + 8);
  });
  return b;
}

export function decodeMsrs(b: Buffer, count: number): MsrEntry[] {
  const out: MsrEntry[] = [];
  for (let i = 0; i < count; i++) {
    const at = SIZE.msrsHeader + i * MSR_ENTRY_SIZE;
    out.push({ index: b.readUInt32LE(at), data: b.readBigUInt64LE(at + 8) });
  }
  return out;
}

const CPUID_ENTRY_SIZE = 40;

/** struct kvm_cpuid2 with room for `capacity` entries (KVM_GET_SUPPORTED_CPUID fills it). */
export function allocCpuid2(capacity: number): Buffer {
  const b = Buffer.alloc(SIZE.cpuid2Header + capacity * CPUID_ENTRY_SIZE);
  b.writeUInt32LE(capacity, 0);
  return b;
}

export function encodeCpuid2(entries: CpuidEntry[]): Buffer {
  const b = allocCpuid2(entries.length);
  entries.forEach((e, i) => {
    const at = SIZE.cpuid2Header + i * CPUID_ENTRY_SIZE;
    b.writeUInt32LE(e.function >>> 0, at);
    b.writeUInt32LE(e.index >>> 0, at + 4);
    b.writeUInt32LE(e.flags >>> 0, at + 8);
    b.writeUInt32LE(e.eax >>> 0, at + 12);
    b.writeUInt32LE(e.ebx >>> 0, at + 16);
    b.writeUInt32LE(e.ecx >>> 0, at + 20);
    b.writeUInt32LE(e.edx >>> 0, at + 24);
  });
  return b;
}

export function decodeCpuid2(b: Buffer): CpuidEntry[] {
  const n = b.readUInt32LE(0);
  const out: CpuidEntry[] = [];
  for (let i = 0; i < n; i++) {
    const at = SIZE.cpuid2Header + i * CPUID_ENTRY_SIZE;
    out.push({
      function: b.readUInt32LE(at), index: b.readUInt32LE(at + 4), flags: b.readUInt32LE(at + 8),
      eax: b.readUInt32LE(at + 12), ebx: b.readUInt32LE(at + 16), ecx: b.readUInt32LE(at + 20), edx: b.readUInt32LE(at + 24),
    });
  }
  return out;
}

/** struct kvm_userspace_memory_region */
export function encodeMemoryRegion(slot: number, flags: number, guestPhys: number, size: number, userAddr: bigint): Buffer {
  const b = Buffer.alloc(SIZE.userspaceMemoryRegion);
  b.writeUInt32LE(slot, 0);
  b.writeUInt32LE(flags, 4);
  b.writeBigUInt64LE(BigInt(guestPhys), 8);
  b.writeBigUInt64LE(BigInt(size), 16);
  b.writeBigUInt64LE(userAddr, 24);
  return b;
}

/** struct kvm_irqfd: fd u32, gsi u32, flags u32, resamplefd u32, pad[16] */
export function encodeIrqfd(fd: number, gsi: number, flags = 0): Buffer {
  const b = Buffer.alloc(SIZE.irqfd);
  b.writeUInt32LE(fd, 0);
  b.writeUInt32LE(gsi, 4);
  b.writeUInt32LE(flags, 8);
  return b;
}

/** struct kvm_ioeventfd: datamatch u64, addr u64, len u32, fd s32, flags u32, pad[36] */
export function encodeIoeventfd(addr: number, len: number, fd: number, flags: number, datamatch = 0n): Buffer {
  const b = Buffer.alloc(SIZE.ioeventfd);
  b.writeBigUInt64LE(datamatch, 0);
  b.writeBigUInt64LE(BigInt(addr), 8);
  b.writeUInt32LE(len, 16);
  b.writeInt32LE(fd, 20);
  b.writeUInt32LE(flags, 24);
  return b;
}
