/**
 * CPUID changes for every vendor: leaf 1, the extended topology leaves 0xb / 0x1f, leaf 0xa
 * (no PMU) and the KVM leaves 0x4000_0000 / 0x4000_0001.
 * Leaf layouts: Intel SDM Vol. 2A, CPUID; KVM leaves: Documentation/virt/kvm/x86/cpuid.rst.
 */
import { CpuidEntry } from './types';
import { KVM_CPUID_FLAG_SIGNIFICANT_INDEX, Topology, nextPowerOfTwo, setBit, setBits } from './cpuid-topology';

/** Leaf 1 ECX bit 24: TSC-deadline timer; bit 31: running under a hypervisor. */
export const LEAF1_ECX_TSC_DEADLINE = 24;
export const LEAF1_ECX_HYPERVISOR = 31;
/** Leaf 1 EDX bit 28: HTT, EBX[23:16] is valid (more than one logical processor per package). */
export const LEAF1_EDX_HTT = 28;
/** CLFLUSH line size in 8-byte units: 8 = 64-byte cache lines. */
export const CLFLUSH_LINE_SIZE_QWORDS = 8;

/** Extended topology level types (leaf 0xb / 0x1f ECX[15:8]). */
export const LEVEL_INVALID = 0;
export const LEVEL_SMT = 1;
export const LEVEL_CORE = 2;

export const KVM_CPUID_SIGNATURE = 0x4000_0000;
export const KVM_CPUID_FEATURES = 0x4000_0001;
/** "KVMKVMKVM\0\0\0" as EBX, ECX, EDX. */
export const KVM_SIGNATURE_EBX = 0x4b4d564b;
export const KVM_SIGNATURE_ECX = 0x564b4d56;
export const KVM_SIGNATURE_EDX = 0x4d;
/** KVM_FEATURE_* bits (cpuid.rst) used when KVM did not report leaf 0x4000_0001 at all. */
export const KVM_FEATURE_CLOCKSOURCE = 0;
export const KVM_FEATURE_NOP_IO_DELAY = 1;
export const KVM_FEATURE_CLOCKSOURCE2 = 3;
export const KVM_FEATURE_CLOCKSOURCE_STABLE_BIT = 24;

function leaf1(e: CpuidEntry, t: Topology, tscDeadline: boolean): void {
  e.ebx = setBits(e.ebx, 24, 8, t.vcpuId); // initial APIC id
  e.ebx = setBits(e.ebx, 16, 8, nextPowerOfTwo(t.vcpuCount)); // addressable logical processor ids
  e.ebx = setBits(e.ebx, 8, 8, CLFLUSH_LINE_SIZE_QWORDS);
  e.ecx = setBit(e.ecx, LEAF1_ECX_HYPERVISOR, true);
  if (tscDeadline) e.ecx = setBit(e.ecx, LEAF1_ECX_TSC_DEADLINE, true);
  e.edx = setBit(e.edx, LEAF1_EDX_HTT, t.vcpuCount > 1);
}

/**
 * Leaf 0xb / 0x1f for one package: subleaf 0 the thread level, subleaf 1 the core level,
 * subleaf 2 the terminating invalid level. EAX[4:0] = how far to shift the x2APIC id right to
 * reach the next level's id, EBX[15:0] = logical processors at this level, ECX[7:0] = subleaf,
 * ECX[15:8] = level type, EDX = this vCPU's x2APIC id.
 */
export function extendedTopologyLeaf(fn: number, t: Topology): CpuidEntry[] {
  const flags = KVM_CPUID_FLAG_SIGNIFICANT_INDEX;
  const levels: Array<[number, number, number]> = [
    [t.smtShift, t.threadsPerCore, LEVEL_SMT],
    [t.coreShift, t.vcpuCount, LEVEL_CORE],
    [0, 0, LEVEL_INVALID],
  ];
  return levels.map(([shift, count, type], index) => ({
    function: fn, index, flags,
    eax: shift, ebx: count, ecx: ((type << 8) | index) >>> 0, edx: t.vcpuId,
  }));
}

/** Replace every subleaf of `fn` (if KVM reported the leaf at all) with `replacement`, in place in the order. */
export function replaceLeaf(entries: CpuidEntry[], fn: number, replacement: CpuidEntry[]): CpuidEntry[] {
  const first = entries.findIndex((e) => e.function === fn);
  if (first < 0) return entries;
  const rest = entries.filter((e) => e.function !== fn);
  const at = entries.slice(0, first).filter((e) => e.function !== fn).length;
  return [...rest.slice(0, at), ...replacement, ...rest.slice(at)];
}

function kvmLeaves(entries: CpuidEntry[]): CpuidEntry[] {
  const kvmMax = entries
    .filter((e) => e.function > KVM_CPUID_SIGNATURE && e.function < 0x4000_0100)
    .reduce((m, e) => Math.max(m, e.function), KVM_CPUID_FEATURES);
  let sig = entries.find((e) => e.function === KVM_CPUID_SIGNATURE);
  if (!sig) {
    sig = { function: KVM_CPUID_SIGNATURE, index: 0, flags: 0, eax: 0, ebx: 0, ecx: 0, edx: 0 };
    entries.push(sig);
  }
  sig.eax = kvmMax;
  sig.ebx = KVM_SIGNATURE_EBX;
  sig.ecx = KVM_SIGNATURE_ECX;
  sig.edx = KVM_SIGNATURE_EDX;
  if (!entries.some((e) => e.function === KVM_CPUID_FEATURES)) {
    // KVM always reports this leaf; if a backend did not, offer the clock alone.
    const eax = ((1 << KVM_FEATURE_CLOCKSOURCE) | (1 << KVM_FEATURE_NOP_IO_DELAY)
      | (1 << KVM_FEATURE_CLOCKSOURCE2) | (1 << KVM_FEATURE_CLOCKSOURCE_STABLE_BIT)) >>> 0;
    entries.push({ function: KVM_CPUID_FEATURES, index: 0, flags: 0, eax, ebx: 0, ecx: 0, edx: 0 });
  }
  return entries;
}

export function normalizeCommon(entries: CpuidEntry[], t: Topology, opts: { tscDeadline: boolean }): CpuidEntry[] {
  for (const e of entries) {
    if (e.function === 1) leaf1(e, t, opts.tscDeadline);
    if (e.function === 0xa) {
      // Architectural performance monitoring: version 0, no counters. The guest gets no PMU.
      e.eax = 0; e.ebx = 0; e.ecx = 0; e.edx = 0;
    }
  }
  entries = replaceLeaf(entries, 0xb, extendedTopologyLeaf(0xb, t));
  entries = replaceLeaf(entries, 0x1f, extendedTopologyLeaf(0x1f, t));
  return kvmLeaves(entries);
}
