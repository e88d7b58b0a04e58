/**
 * The e820 memory map handed to the kernel in the zero page.
 *
 * As Firecracker: RAM [0, EBDA_START), RAM from HIGH_MEMORY_START to the end of low RAM, and RAM
 * above 4 GiB when the guest has more than 3 GiB. We add one reserved entry, [EBDA_START,
 * 0xa0000), because that kilobyte holds the MP table: saying so keeps every byte below 1 MiB
 * described and tells the kernel plainly that the table is not free RAM. (Linux would protect
 * it anyway, since it reserves 0x9f000-1 MiB when the BDA reports no EBDA size, but the map
 * should not depend on that heuristic.) The MMIO gap below 4 GiB is left as a hole, not a
 * reserved entry: Linux treats holes as address space for devices, which is what the gap is,
 * and the virtio-mmio devices claim their windows from it; ACPI, when added, describes it too.
 * When ACPI tables are written, configureBoot adds one more reserved entry for their area,
 * 0xE0000-0xFFFFF (acpi/index.ts), inside the legacy hole.
 */
import { EBDA_START, HIGH_MEMORY_START, LOW_MEMORY_END, contiguousRanges, memoryRegions } from './layout';

export const E820_RAM = 1;
export const E820_RESERVED = 2;
export const E820_ACPI = 3;
export const E820_NVS = 4;
export const E820_UNUSABLE = 5;

/** The zero page holds at most 128 entries (boot_params.e820_table, 0x2d0/0xa00 = 128 x 20 bytes). */
export const E820_MAX_ENTRIES = 128;

export interface E820Entry {
  addr: number;
  size: number;
  type: number;
}

/**
 * The e820 map for guest RAM made of `regions` (as memoryRegions() or GuestMemory.regions give
 * them). `extra` entries (such as the reserved ACPI area at 0xE0000-0xFFFFF) must lie outside
 * the RAM entries; they are merged in address order.
 */
export function e820FromRegions(regions: ReadonlyArray<{ start: number; size: number }>, extra: readonly E820Entry[] = []): E820Entry[] {
  const out: E820Entry[] = [];
  for (const { start, end } of contiguousRanges(regions)) {
    if (start < EBDA_START) {
      // Conventional memory up to the EBDA, then (if RAM reaches that far) the EBDA itself,
      // then nothing until 1 MiB: 0xa0000-0x100000 is the legacy VGA/BIOS hole.
      out.push({ addr: start, size: Math.min(end, EBDA_START) - start, type: E820_RAM });
      if (end > EBDA_START) {
        out.push({ addr: EBDA_START, size: LOW_MEMORY_END - EBDA_START, type: E820_RESERVED });
      }
      if (end > HIGH_MEMORY_START) {
        out.push({ addr: HIGH_MEMORY_START, size: end - HIGH_MEMORY_START, type: E820_RAM });
      }
    } else {
      // RAM that starts inside the legacy hole is only usable from 1 MiB.
      const s = Math.max(start, HIGH_MEMORY_START);
      if (end > s) out.push({ addr: s, size: end - s, type: E820_RAM });
    }
  }
  for (const e of extra) {
    const clash = out.find((o) => e.addr < o.addr + o.size && o.addr < e.addr + e.size);
    if (clash) throw new RangeError(`e820 entry 0x${e.addr.toString(16)}+0x${e.size.toString(16)} overlaps 0x${clash.addr.toString(16)}+0x${clash.size.toString(16)}.`);
    out.push({ ...e });
  }
  return out.sort((a, b) => a.addr - b.addr);
}

/** The e820 map for a guest of `memSizeBytes` laid out by memoryRegions(). */
export function e820ForMemSize(memSizeBytes: number): E820Entry[] {
  return e820FromRegions(memoryRegions(memSizeBytes));
}
