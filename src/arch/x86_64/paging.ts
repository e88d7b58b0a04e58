/**
 * Identity page tables for the first GiB with 2 MiB pages: PML4[0] -> PDPTE, PDPTE[0] -> PDE,
 * PDE[i] maps [i * 2 MiB, (i + 1) * 2 MiB). The 64-bit boot protocol (boot.rst, "64-bit Boot
 * Protocol") asks for an identity map of the kernel, zero page and command line; the kernel
 * builds its own tables straight away, so one GiB covers everything we place.
 * Entry format: Intel SDM Vol. 3A, 4.5 "4-Level Paging" (tables 4-15, 4-17, 4-18).
 */
import { GuestMemory } from '../../memory/guest-memory';
import { PDE_START, PDPTE_START, PML4_START } from './layout';

export const PTE_PRESENT = 0x1n;
export const PTE_WRITABLE = 0x2n;
/** PS: in a PDE, maps a 2 MiB page instead of pointing to a page table. */
export const PTE_PAGE_SIZE = 0x80n;
export const IDENTITY_MAPPED_BYTES = 512 * 2 * 1024 * 1024;

/** Write the identity map and return the value for CR3. */
export function writeIdentityPageTables(mem: GuestMemory): bigint {
  mem.write(PML4_START, Buffer.alloc(4096));
  mem.write(PDPTE_START, Buffer.alloc(4096));
  mem.writeU64(PML4_START, BigInt(PDPTE_START) | PTE_PRESENT | PTE_WRITABLE);
  mem.writeU64(PDPTE_START, BigInt(PDE_START) | PTE_PRESENT | PTE_WRITABLE);
  for (let i = 0; i < 512; i++) {
    mem.writeU64(PDE_START + i * 8, (BigInt(i) << 21n) | PTE_PAGE_SIZE | PTE_PRESENT | PTE_WRITABLE);
  }
  return BigInt(PML4_START);
}
