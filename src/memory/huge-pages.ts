/**
 * Transparent huge pages for the part of guest RAM the kernel image occupies.
 *
 * Every guest page first touched costs a host page fault and a nested-paging fault; for the
 * ~20-50 MiB a Linux kernel is loaded, decompressed and run in, 2 MiB pages make that thousands
 * of faults fewer (measured in the emulated KVM host, where each fault crosses TCG: the guest's
 * boot ~0.2 s faster). QEMU advises all of guest RAM this way; Sparkler only the kernel's
 * footprint, which the guest touches whole anyway, so that the rest of guest RAM stays
 * populated page by page (a small guest touches kilobytes, not 2 MiB blocks).
 * KVM maps a huge page into the guest only when host and guest addresses agree modulo 2 MiB,
 * hence the 2 MiB-aligned guest RAM mapping (anonymous-memory.ts).
 */
import { native, NativeShim } from '../native';
import type { GuestMemory } from './guest-memory';

export const HUGE_PAGE_SIZE = 2 * 1024 * 1024;
const MADV_HUGEPAGE = 14;

/**
 * Advises huge pages for guest addresses [start, end), widened to 2 MiB boundaries and clipped
 * to each region. Best effort: a host without THP (or with it off) refuses with EINVAL and
 * the guest simply gets small pages. Returns the bytes advised.
 */
export function adviseHugePages(memory: GuestMemory, start: number, end: number, shim: NativeShim = native()): number {
  let advised = 0;
  const from = Math.floor(start / HUGE_PAGE_SIZE) * HUGE_PAGE_SIZE;
  const to = Math.ceil(end / HUGE_PAGE_SIZE) * HUGE_PAGE_SIZE;
  for (const r of memory.regions) {
    const a = Math.max(from, r.start);
    const b = Math.min(to, r.start + r.bytes.length);
    if (a >= b) continue;
    if (shim.madvise(r.bytes.subarray(a - r.start, b - r.start), MADV_HUGEPAGE) === 0) advised += b - a;
  }
  return advised;
}

/**
 * Below this a kernel image's footprint is a few hundred small-page faults; huge pages would
 * only raise its resident memory (a 16 KiB test guest would cost a 2 MiB block).
 */
export const MIN_HUGE_FOOTPRINT = 2 * HUGE_PAGE_SIZE;

/** The loader's beforeLoad hook: huge pages for a kernel image's footprint of 4 MiB or more. */
export function adviseKernelHugePages(memory: GuestMemory, start: number, end: number, shim: NativeShim = native()): number {
  return end - start >= MIN_HUGE_FOOTPRINT ? adviseHugePages(memory, start, end, shim) : 0;
}
