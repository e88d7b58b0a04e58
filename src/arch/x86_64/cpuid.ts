/**
 * CPUID normalisation: turn the list KVM_GET_SUPPORTED_CPUID returns into the list one vCPU
 * gets from KVM_SET_CPUID2. As Firecracker: the hypervisor bit, this vCPU's APIC id, a topology
 * (one package; cores of 1 or 2 threads) consistent across leaves 1, 4, 0xb, 0x1f and AMD's
 * 0x8000_0008 / 0x8000_001d / 0x8000_001e; no turbo / energy bias / PMU; and KVM's own leaves,
 * so the guest finds kvm-clock (without it Linux calibrates the TSC against the PIT and stalls).
 * The vendor-specific parts are in cpuid-intel.ts and cpuid-amd.ts, the shared ones in
 * cpuid-common.ts.
 */
import { CpuidEntry } from './types';
import { CpuVendor, CpuidOptions, topology } from './cpuid-topology';
import { normalizeCommon } from './cpuid-common';
import { normalizeIntel } from './cpuid-intel';
import { normalizeAmd } from './cpuid-amd';

export * from './cpuid-topology';

/** Read the vendor from leaf 0 (EBX, EDX, ECX spell it). */
export function cpuVendor(entries: readonly CpuidEntry[]): CpuVendor {
  const leaf0 = entries.find((e) => e.function === 0);
  if (!leaf0) return 'unknown';
  const b = Buffer.alloc(12);
  b.writeUInt32LE(leaf0.ebx >>> 0, 0);
  b.writeUInt32LE(leaf0.edx >>> 0, 4);
  b.writeUInt32LE(leaf0.ecx >>> 0, 8);
  switch (b.toString('latin1')) {
    case 'GenuineIntel': return 'intel';
    case 'AuthenticAMD': return 'amd';
    case 'HygonGenuine': return 'hygon';
    default: return 'unknown';
  }
}

/** The normalised CPUID list for one vCPU. The input is not modified. */
export function normalizeCpuid(supported: readonly CpuidEntry[], opts: CpuidOptions): CpuidEntry[] {
  const topo = topology(opts);
  const vendor = opts.hostVendor ?? cpuVendor(supported);
  let entries = supported.map((e) => ({ ...e }));
  entries = normalizeCommon(entries, topo, { tscDeadline: opts.tscDeadline ?? true });
  if (vendor === 'intel') entries = normalizeIntel(entries, topo);
  if (vendor === 'amd' || vendor === 'hygon') entries = normalizeAmd(entries, topo);
  return entries;
}
