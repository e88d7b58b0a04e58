/**
 * AMD (and Hygon) CPUID changes: topology extensions on (0x8000_0001 ECX[22] TOPOEXT) when the
 * extended APIC id leaf exists, core count and APIC id size in 0x8000_0008 ECX, cache sharing
 * in 0x8000_001d and the extended APIC id / core id / threads per core in 0x8000_001e.
 * Layouts: AMD64 Architecture Programmer's Manual Vol. 3, Appendix E "CPUID".
 */
import { CpuidEntry } from './types';
import { Topology, setBit, setBits, setCacheSharing } from './cpuid-topology';

export const AMD_EXT_FEATURES = 0x8000_0001;
export const AMD_ECX_TOPOEXT = 22;
export const AMD_SIZE_IDS = 0x8000_0008;
export const AMD_CACHE_TOPOLOGY = 0x8000_001d;
export const AMD_EXT_APIC_ID = 0x8000_001e;

export function normalizeAmd(entries: CpuidEntry[], t: Topology): CpuidEntry[] {
  const hasExtApicLeaf = entries.some((e) => e.function === AMD_EXT_APIC_ID);
  for (const e of entries) {
    switch (e.function) {
      case AMD_EXT_FEATURES:
        if (hasExtApicLeaf) e.ecx = setBit(e.ecx, AMD_ECX_TOPOEXT, true);
        break;
      case AMD_SIZE_IDS:
        // ECX[7:0] NC: cores (logical processors) in the package minus one;
        // ECX[15:12] ApicIdSize: APIC id bits that identify a processor inside the package.
        e.ecx = setBits(e.ecx, 0, 8, t.vcpuCount - 1);
        e.ecx = setBits(e.ecx, 12, 4, t.coreShift);
        break;
      case AMD_CACHE_TOPOLOGY:
        setCacheSharing(e, t);
        break;
      case AMD_EXT_APIC_ID:
        // EAX: extended APIC id; EBX[7:0] core id, EBX[15:8] threads per core minus one;
        // ECX[7:0] node id, ECX[10:8] nodes per processor minus one: a single node.
        e.eax = t.vcpuId;
        e.ebx = setBits(setBits(0, 0, 8, Math.floor(t.vcpuId / t.threadsPerCore)), 8, 8, t.threadsPerCore - 1);
        e.ecx = 0;
        e.edx = 0;
        break;
    }
  }
  return entries;
}
