/**
 * Special registers for entering the kernel directly in 64-bit long mode: protected mode and
 * paging on (CR0.PE, CR0.PG), PAE (CR4.PAE), long mode active (EFER.LME | EFER.LMA), CR3 at the
 * identity map, CS a 64-bit code segment and the data segments flat, from the boot GDT.
 * Bit positions: Intel SDM Vol. 3A, 2.5 "Control Registers" and 2.2.1 "Extended Feature Enable Register".
 */
import { GuestMemory } from '../../memory/guest-memory';
import { X86DescriptorTable, X86Segment, X86Sregs } from './types';
import { writeGdtIdt } from './gdt';
import { writeIdentityPageTables } from './paging';

export const X86_CR0_PE = 0x1n;
export const X86_CR0_ET = 0x10n;
export const X86_CR0_NW = 0x2000_0000n;
export const X86_CR0_CD = 0x4000_0000n;
export const X86_CR0_PG = 0x8000_0000n;
export const X86_CR4_PAE = 0x20n;
export const EFER_LME = 0x100n;
export const EFER_LMA = 0x400n;

/** Everything long-mode entry changes in kvm_sregs; the rest of the vCPU's sregs is kept. */
export interface LongModeSetup {
  gdt: X86DescriptorTable;
  idt: X86DescriptorTable;
  code: X86Segment;
  data: X86Segment;
  tss: X86Segment;
  cr3: bigint;
  cr0Set: bigint;
  /**
   * Bits cleared in CR0: caching disabled (CD, NW) as the CPU comes out of reset. A firmware
   * would have enabled caches before handing over; the kernel rewrites CR0 soon anyway.
   */
  cr0Clear: bigint;
  cr4Set: bigint;
  eferSet: bigint;
}

/** Write the GDT, IDT and identity page tables into guest memory (once per VM). */
export function setupLongModeTables(mem: GuestMemory): LongModeSetup {
  const seg = writeGdtIdt(mem);
  const cr3 = writeIdentityPageTables(mem);
  return {
    ...seg,
    cr3,
    cr0Set: X86_CR0_PE | X86_CR0_PG | X86_CR0_ET,
    cr0Clear: X86_CR0_CD | X86_CR0_NW,
    cr4Set: X86_CR4_PAE,
    eferSet: EFER_LME | EFER_LMA,
  };
}

/** Apply long-mode entry to the sregs a vCPU reports (KVM_GET_SREGS); pure, per vCPU. */
export function applyLongMode(current: X86Sregs, lm: LongModeSetup): X86Sregs {
  return {
    ...current,
    gdt: { ...lm.gdt },
    idt: { ...lm.idt },
    cs: { ...lm.code },
    ds: { ...lm.data },
    es: { ...lm.data },
    fs: { ...lm.data },
    gs: { ...lm.data },
    ss: { ...lm.data },
    tr: { ...lm.tss },
    cr0: (current.cr0 | lm.cr0Set) & ~lm.cr0Clear,
    cr3: lm.cr3,
    cr4: current.cr4 | lm.cr4Set,
    efer: current.efer | lm.eferSet,
  };
}

const resetSegment = (selector: number, type: number): X86Segment => ({
  base: 0n, limit: 0xffff, selector, type, present: 1, dpl: 0, db: 0, s: 1, l: 0, g: 0, avl: 0, unusable: 0,
});

/**
 * Architectural reset values (Intel SDM Vol. 3A, 9.1.1, table 9-1) roughly as KVM reports them
 * for a fresh vCPU; for tests and for callers that have no KVM_GET_SREGS result.
 */
export function resetSregs(): X86Sregs {
  const data = resetSegment(0, 3);
  return {
    cs: { ...resetSegment(0xf000, 11), base: 0xffff0000n },
    ds: { ...data }, es: { ...data }, fs: { ...data }, gs: { ...data }, ss: { ...data },
    tr: { ...resetSegment(0, 11), s: 0 },
    ldt: { ...resetSegment(0, 2), s: 0 },
    gdt: { base: 0n, limit: 0xffff },
    idt: { base: 0n, limit: 0xffff },
    cr0: 0x6000_0010n, cr2: 0n, cr3: 0n, cr4: 0n, cr8: 0n, efer: 0n,
    apicBase: 0xfee0_0900n,
  };
}

/** Convenience: write the tables and return the boot sregs for one vCPU. */
export function bootSregs(mem: GuestMemory, current: X86Sregs = resetSregs()): X86Sregs {
  return applyLongMode(current, setupLongModeTables(mem));
}
