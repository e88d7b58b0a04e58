/**
 * The vCPU topology the CPUID normalisers describe, and bit helpers they share. APIC id = vCPU
 * index; one package; cores of one or two threads. Bit fields as Intel SDM Vol. 3A, 9.9.1
 * "Hierarchical Mapping of Shared Resources".
 */
import { SparklerError } from '../../errors';
import { CpuidEntry } from './types';

export type CpuVendor = 'intel' | 'amd' | 'hygon' | 'unknown';

export class CpuidError extends SparklerError {
  constructor(message: string) {
    super('ECPUID', message);
    this.name = 'CpuidError';
  }
}

/** KVM_CPUID_FLAG_SIGNIFCANT_INDEX (sic, the kernel's spelling): the entry depends on ECX. */
export const KVM_CPUID_FLAG_SIGNIFICANT_INDEX = 1;

/** The most vCPUs leaf 1 EBX[23:16] (addressable logical processor ids, a power of two) can describe. */
export const CPUID_MAX_VCPUS = 128;

export interface CpuidOptions {
  /** This vCPU's index; it is also its APIC id. */
  vcpuId: number;
  vcpuCount: number;
  /** Two threads per core (an even vCPU count is then required, or 1). */
  smt: boolean;
  /** Override the vendor read from leaf 0. */
  hostVendor?: CpuVendor;
  /** Advertise the TSC-deadline timer KVM's in-kernel LAPIC emulates (default true, as Firecracker). */
  tscDeadline?: boolean;
}

/** The topology every normaliser works from. APIC id = vCPU index; bit fields as Intel SDM Vol. 3A, 9.9.1. */
export interface Topology {
  vcpuId: number;
  vcpuCount: number;
  threadsPerCore: number;
  cores: number;
  /** log2 of the number of ids the thread level spans (0 or 1). */
  smtShift: number;
  /** log2 of the number of ids one package spans (the next power of two at or above vcpuCount). */
  coreShift: number;
}

export function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

export function log2Ceil(n: number): number {
  return Math.log2(nextPowerOfTwo(n));
}

export function topology(opts: CpuidOptions): Topology {
  const { vcpuId, vcpuCount, smt } = opts;
  if (!Number.isInteger(vcpuCount) || vcpuCount < 1 || vcpuCount > CPUID_MAX_VCPUS) {
    throw new CpuidError(`The vCPU count must be between 1 and ${CPUID_MAX_VCPUS}, not ${vcpuCount}.`);
  }
  if (!Number.isInteger(vcpuId) || vcpuId < 0 || vcpuId >= vcpuCount) {
    throw new CpuidError(`The vCPU index ${vcpuId} is out of range for ${vcpuCount} vCPUs.`);
  }
  if (smt && vcpuCount > 1 && vcpuCount % 2 !== 0) {
    throw new CpuidError(`With SMT on, the vCPU count must be 1 or even (two threads per core), not ${vcpuCount}.`);
  }
  const threadsPerCore = smt && vcpuCount > 1 ? 2 : 1;
  return {
    vcpuId,
    vcpuCount,
    threadsPerCore,
    cores: vcpuCount / threadsPerCore,
    smtShift: log2Ceil(threadsPerCore),
    coreShift: log2Ceil(vcpuCount),
  };
}

/** Set bits [lo, lo+width) of a 32-bit value. */
export function setBits(value: number, lo: number, width: number, field: number): number {
  const mask = width >= 32 ? 0xffff_ffff : ((1 << width) - 1) >>> 0;
  return ((value & ~((mask << lo) >>> 0)) | (((field & mask) << lo) >>> 0)) >>> 0;
}

export function setBit(value: number, bit: number, on: boolean): number {
  return setBits(value, bit, 1, on ? 1 : 0);
}

export function getBits(value: number, lo: number, width: number): number {
  const mask = width >= 32 ? 0xffff_ffff : ((1 << width) - 1) >>> 0;
  return ((value >>> lo) & mask) >>> 0;
}


/**
 * Cache sharing for a leaf 4 / 0x8000_001d subleaf: EAX[7:5] is the cache level; EAX[25:14] is
 * the number of logical processors sharing it minus one. L1 and L2 belong to one core (its
 * threads), L3 and beyond to the whole package. Null subleaves (type 0) are left alone.
 */
export function setCacheSharing(e: CpuidEntry, t: Topology): void {
  if (getBits(e.eax, 0, 5) === 0) return;
  const level = getBits(e.eax, 5, 3);
  const sharing = level <= 2 ? t.threadsPerCore : t.vcpuCount;
  e.eax = setBits(e.eax, 14, 12, sharing - 1);
}
