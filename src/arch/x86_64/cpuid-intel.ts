/**
 * Intel-only CPUID changes: the deterministic cache parameters (leaf 4) share caches the way
 * our topology says, and leaf 6 hides turbo boost and the energy/performance bias MSR, which
 * the guest cannot use. Layouts: Intel SDM Vol. 2A, CPUID leaves 04H and 06H.
 */
import { CpuidEntry } from './types';
import { Topology, getBits, setBit, setBits } from './cpuid-topology';

export const LEAF6_EAX_TURBO_BOOST = 1;
export const LEAF6_ECX_EPB = 3;

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

export function normalizeIntel(entries: CpuidEntry[], t: Topology): CpuidEntry[] {
  for (const e of entries) {
    if (e.function === 4) {
      setCacheSharing(e, t);
      if (getBits(e.eax, 0, 5) !== 0) {
        // EAX[31:26]: addressable core ids in the package minus one (6 bits).
        e.eax = setBits(e.eax, 26, 6, Math.min(t.cores, 64) - 1);
      }
    }
    if (e.function === 6) {
      e.eax = setBit(e.eax, LEAF6_EAX_TURBO_BOOST, false);
      e.ecx = setBit(e.ecx, LEAF6_ECX_EPB, false);
    }
  }
  return entries;
}
