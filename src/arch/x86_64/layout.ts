/**
 * The x86_64 guest-physical address map (the same fixed addresses Firecracker uses on x86_64).
 *
 *   0x0000_0500  GDT                 0x0000_0520  IDT
 *   0x0000_7000  zero page (struct boot_params)
 *   0x0000_8ff0  initial stack pointer (grows down towards the zero page)
 *   0x0000_9000  PML4   0x0000_a000  PDPTE   0x0000_b000  PDE (identity map of the first GiB)
 *   0x0002_0000  kernel command line (at most 2048 bytes with its NUL)
 *   0x0009_fc00  EBDA: MP floating pointer + MP configuration table (up to 0xa_0000)
 *   0x0010_0000  kernel (HIGH_MEMORY_START) ... RAM ... up to 3 GiB
 *   0xc000_0000  MMIO gap: boot timer at 0xc000_0000, virtio-mmio slots from 0xc000_1000,
 *                IOAPIC 0xfec0_0000, LAPIC 0xfee0_0000
 *   0x1_0000_0000  RAM above 4 GiB, if the guest has more than 3 GiB
 */
import { SparklerError } from '../../errors';
import { GuestAddress, guestAddress } from '../../memory/guest-address';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const PAGE_SIZE = 4 * KiB;

export const GDT_START = 0x500;
export const IDT_START = 0x520;
export const ZERO_PAGE_START = 0x7000;
export const BOOT_STACK_POINTER = 0x8ff0;
export const PML4_START = 0x9000;
export const PDPTE_START = 0xa000;
export const PDE_START = 0xb000;
export const CMDLINE_START = 0x20000;
/** Maximum size of the command line including its terminating NUL. */
export const CMDLINE_MAX_SIZE = 2048;
/** Start of the Extended BIOS Data Area: the MP table lives here, RAM in e820 stops here. */
export const EBDA_START = 0x9fc00;
/** End of conventional memory: the legacy VGA / BIOS hole runs from here to 1 MiB. */
export const LOW_MEMORY_END = 0xa0000;
/** The kernel is loaded at or above this address (the boot protocol's "high memory"). */
export const HIGH_MEMORY_START = 0x100000;

/** The 1 GiB hole below 4 GiB reserved for devices: no RAM is placed here. */
export const MMIO_GAP_START = 0xc000_0000;
export const MMIO_GAP_END = 0x1_0000_0000;
export const MMIO_GAP_SIZE = MMIO_GAP_END - MMIO_GAP_START;
/** First address above 4 GiB, where RAM beyond 3 GiB continues. */
export const FIRST_ADDR_PAST_32BITS = 0x1_0000_0000;

/** The boot timer device (Firecracker's boot-time marker) sits at the very start of the gap. */
export const BOOT_TIMER_START = 0xc000_0000;
/** virtio-mmio devices are placed in 4 KiB slots from here. */
export const VIRTIO_MMIO_START = 0xc000_1000;
export const VIRTIO_MMIO_SLOT_SIZE = 0x1000;

export const IOAPIC_START = 0xfec0_0000;
export const LAPIC_START = 0xfee0_0000;

/** A RAM region is split into pieces no larger than this: Node Buffers above 2 GiB are not safe everywhere. */
/** The legacy devices every microVM has: COM1 (16550 UART), the i8042 (reset, Ctrl-Alt-Del), on their ISA ports and IRQs. */
export const COM1_PORT = 0x3f8;
export const COM1_PORT_COUNT = 8;
export const COM1_IRQ = 4;
export const I8042_DATA_PORT = 0x60;
export const I8042_COMMAND_PORT = 0x64;
export const I8042_IRQ = 1;

export const MAX_REGION_SIZE = 2 * GiB;

export class MemoryLayoutError extends SparklerError {
  constructor(message: string) {
    super('EMEMLAYOUT', message);
    this.name = 'MemoryLayoutError';
  }
}

export interface RamRegion {
  start: GuestAddress;
  size: number;
}

/**
 * The guest RAM regions for `memSizeBytes` of RAM: [0, min(size, 3 GiB)) and, for larger
 * guests, the rest from 4 GiB, leaving the MMIO gap empty. Every region is split into pieces
 * of at most MAX_REGION_SIZE (pieces are contiguous, so a guest sees one range).
 */
export function memoryRegions(memSizeBytes: number): RamRegion[] {
  if (!Number.isSafeInteger(memSizeBytes) || memSizeBytes <= 0) {
    throw new MemoryLayoutError(`The guest memory size must be a positive whole number of bytes, not ${memSizeBytes}.`);
  }
  if (memSizeBytes % PAGE_SIZE !== 0) {
    throw new MemoryLayoutError(`The guest memory size (${memSizeBytes} bytes) must be a multiple of the 4 KiB page size.`);
  }
  const ranges: Array<[number, number]> = [];
  const low = Math.min(memSizeBytes, MMIO_GAP_START);
  ranges.push([0, low]);
  if (memSizeBytes > MMIO_GAP_START) {
    ranges.push([FIRST_ADDR_PAST_32BITS, memSizeBytes - MMIO_GAP_START]);
  }
  const out: RamRegion[] = [];
  for (const [start, size] of ranges) {
    for (let off = 0; off < size; off += MAX_REGION_SIZE) {
      out.push({ start: guestAddress(start + off), size: Math.min(MAX_REGION_SIZE, size - off) });
    }
  }
  return out;
}

/** Merge regions that touch into contiguous ranges (undoing the 2 GiB split), sorted by start. */
export function contiguousRanges(regions: ReadonlyArray<{ start: number; size: number }>): Array<{ start: number; end: number }> {
  const sorted = [...regions].filter((r) => r.size > 0).sort((a, b) => a.start - b.start);
  const out: Array<{ start: number; end: number }> = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && last.end === r.start) last.end = r.start + r.size;
    else out.push({ start: r.start, end: r.start + r.size });
  }
  return out;
}

/** The end (exclusive) of the RAM range that starts at 0: "low RAM", below the MMIO gap. */
export function lowRamEnd(regions: ReadonlyArray<{ start: number; size: number }>): number {
  const first = contiguousRanges(regions)[0];
  return first && first.start === 0 ? first.end : 0;
}
