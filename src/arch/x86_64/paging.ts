/**
 * Identity page tables for the first GiB with 2 MiB pages: PML4[0] -> PDPTE, PDPTE[0] -> PDE,
 * PDE[i] maps [i * 2 MiB, (i + 1) * 2 MiB). The 64-bit boot protocol (boot.rst, "64-bit Boot
 * Protocol") asks for an identity map of the kernel, zero page and command line; the kernel
 * builds its own tables straight away, so one GiB covers everything we place.
 * Entry format: Intel SDM Vol. 3A, 4.5 "4-Level Paging" (tables 4-15, 4-17, 4-18).
 */
import { GuestMemory } from '../../memory/guest-memory';
import { PDE_START, PDPTE_START, PML4_START } from './layout';

export const PTE_PRESENT = 0x1;
export const PTE_WRITABLE = 0x2;
/** PS: in a PDE, maps a 2 MiB page instead of pointing to a page table. */
export const PTE_PAGE_SIZE = 0x80;
export const IDENTITY_MAPPED_BYTES = 512 * 2 * 1024 * 1024;

const TABLE_BYTES = 4096;

/**
 * Write the identity map and return the value for CR3. The three tables are built in one
 * buffer and copied in once: every entry fits in 32 bits (the map ends at 1 GiB), and this runs
 * cold on every VM start, where 512 BigInt writes through bounds-checked views took ~2 ms natively
 * (~25 ms in the emulated KVM host).
 */
export function writeIdentityPageTables(mem: GuestMemory): bigint {
  // Little-endian words (an x86_64 host); the PML4, PDPT and PD are consecutive pages (layout.ts).
  const tables = new Uint32Array((PDE_START + TABLE_BYTES - PML4_START) / 4);
  tables[0] = PDPTE_START | PTE_PRESENT | PTE_WRITABLE;
  tables[(PDPTE_START - PML4_START) / 4] = PDE_START | PTE_PRESENT | PTE_WRITABLE;
  const pde = (PDE_START - PML4_START) / 4;
  // Entry i maps i * 2 MiB: bits 21-29 of the low half, the high half stays zero.
  for (let i = 0; i < 512; i++) tables[pde + 2 * i] = ((i << 21) | PTE_PAGE_SIZE | PTE_PRESENT | PTE_WRITABLE) >>> 0;
  mem.write(PML4_START, new Uint8Array(tables.buffer));
  return BigInt(PML4_START);
}
