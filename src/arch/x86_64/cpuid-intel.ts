/**
 * Intel-only CPUID changes: the deterministic cache parameters (leaf 4) share caches the way
 * our topology says, and leaf 6 hides turbo boost and the energy/performance bias MSR, which
 * the guest cannot use. Layouts: Intel SDM Vol. 2A, CPUID leaves 04H and 06H.
 */
import { CpuidEntry } from './types';
import { Topology, getBits, setBit, setBits, setCacheSharing } from './cpuid-topology';

export const LEAF6_EAX_TURBO_BOOST = 1;
export const LEAF6_ECX_EPB = 3;

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
