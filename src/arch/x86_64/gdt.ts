/**
 * The boot GDT and IDT. Four GDT entries as Firecracker: null, 64-bit code (flags 0xa09b),
 * data (0xc093) and a TSS (0x808b), all with base 0 and limit 0xfffff (4 GiB with G set).
 * The IDT is a single zero entry: interrupts stay disabled until the kernel installs its own.
 *
 * Descriptor layout: Intel SDM Vol. 3A, 3.4.5 "Segment Descriptors" (figure 3-8).
 */
import { GuestMemory } from '../../memory/guest-memory';
import { X86DescriptorTable, X86Segment } from './types';
import { GDT_START, IDT_START } from './layout';

export const GDT_FLAGS_CODE64 = 0xa09b;
export const GDT_FLAGS_DATA = 0xc093;
export const GDT_FLAGS_TSS = 0x808b;

/** Pack a segment descriptor from its 16-bit flags word (access byte + G/DB/L/AVL nibble), base and 20-bit limit. */
export function gdtEntry(flags: number, base: number, limit: number): bigint {
  const b = BigInt(base >>> 0);
  const l = BigInt(limit >>> 0);
  const f = BigInt(flags);
  return (
    ((b & 0xff00_0000n) << 32n) |
    ((f & 0x0000_f0ffn) << 40n) |
    ((l & 0x000f_0000n) << 32n) |
    ((b & 0x00ff_ffffn) << 16n) |
    (l & 0x0000_ffffn)
  );
}

const bits = (e: bigint, shift: bigint, mask: bigint): number => Number((e >> shift) & mask);

/** The kvm_segment a descriptor at GDT index `index` loads into a segment register. */
export function segmentFromGdt(entry: bigint, index: number): X86Segment {
  const base = ((entry >> 32n) & 0xff00_0000n) | ((entry >> 16n) & 0x00ff_ffffn);
  const g = bits(entry, 55n, 1n);
  let limit = Number(((entry >> 32n) & 0x000f_0000n) | (entry & 0xffffn));
  // The register holds the byte-granular limit; with G set the 20-bit field counts 4 KiB pages.
  if (g) limit = (limit * 4096 + 0xfff) >>> 0;
  const present = bits(entry, 47n, 1n);
  return {
    base,
    limit,
    selector: index * 8,
    type: bits(entry, 40n, 0xfn),
    present,
    dpl: bits(entry, 45n, 3n),
    db: bits(entry, 54n, 1n),
    s: bits(entry, 44n, 1n),
    l: bits(entry, 53n, 1n),
    g,
    avl: bits(entry, 52n, 1n),
    unusable: present ? 0 : 1,
  };
}

export const BOOT_GDT: readonly bigint[] = [
  gdtEntry(0, 0, 0),
  gdtEntry(GDT_FLAGS_CODE64, 0, 0xfffff),
  gdtEntry(GDT_FLAGS_DATA, 0, 0xfffff),
  gdtEntry(GDT_FLAGS_TSS, 0, 0xfffff),
];

export interface BootSegments {
  gdt: X86DescriptorTable;
  idt: X86DescriptorTable;
  code: X86Segment;
  data: X86Segment;
  tss: X86Segment;
}

/** Write the boot GDT at GDT_START and a zeroed IDT at IDT_START; return the segments they define. */
export function writeGdtIdt(mem: GuestMemory): BootSegments {
  BOOT_GDT.forEach((e, i) => mem.writeU64(GDT_START + i * 8, e));
  mem.writeU64(IDT_START, 0n);
  return {
    gdt: { base: BigInt(GDT_START), limit: BOOT_GDT.length * 8 - 1 },
    idt: { base: BigInt(IDT_START), limit: 8 - 1 },
    code: segmentFromGdt(BOOT_GDT[1], 1),
    data: segmentFromGdt(BOOT_GDT[2], 2),
    tss: segmentFromGdt(BOOT_GDT[3], 3),
  };
}
