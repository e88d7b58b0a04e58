/**
 * Hands guest pages back to the host: madvise(MADV_DONTNEED) on the host mapping behind them, so
 * the VMM's resident memory falls and the guest reads zeros when it touches them again.
 *
 * Every range comes from the guest, so each is checked against guest RAM first and only ever
 * reaches `discard` as a view of guest RAM (GuestMemory.view throws for anything else): a page
 * outside RAM is counted and refused, never advised. Adjacent pages are joined into one call.
 *
 * On hugetlbfs-backed RAM the kernel can only drop whole huge pages, and dropping one the guest
 * still partly uses would zero its live data. The balloon therefore keeps a bitmap of the 4 KiB
 * pages it holds and discards a huge page once all of it is in the balloon; hinted and reported
 * ranges are trimmed to the whole huge pages they cover.
 */
import type { GuestMemory } from '../../../memory/guest-memory';
import { BALLOON_PAGE_SIZE } from './constants';

/** madvise(MADV_DONTNEED) over a view of guest RAM: 0 or -errno. */
export type DiscardFn = (bytes: Buffer) => number;

export interface PageCounts {
  /** Pages newly handed to the balloon (inflate) or taken back (deflate). */
  accepted: number;
  /** Page numbers outside guest RAM. */
  refused: number;
  /** Bytes dropped on the host (whole huge pages only, on hugetlbfs). */
  discardedBytes: number;
  /** madvise calls that failed. */
  failures: number;
}

const emptyCounts = (): PageCounts => ({ accepted: 0, refused: 0, discardedBytes: 0, failures: 0 });

export class PageDiscarder {
  /** Per 4 KiB page, whether the balloon holds it (huge pages only: small pages need no record). */
  private readonly held?: Uint8Array;
  /** Per huge page, how many of its 4 KiB pages the balloon holds. */
  private readonly heldPerHuge?: Uint16Array;
  private readonly pagesPerHuge: number;

  constructor(
    private readonly memory: GuestMemory,
    private readonly discard: DiscardFn,
    /** The host page size behind guest RAM when it is hugetlbfs (2 MiB); undefined for small pages. */
    private readonly hugePageSize?: number,
  ) {
    this.pagesPerHuge = (hugePageSize ?? BALLOON_PAGE_SIZE) / BALLOON_PAGE_SIZE;
    if (hugePageSize !== undefined) {
      const last = memory.regions[memory.regions.length - 1];
      const pages = last === undefined ? 0 : Math.ceil((last.start + last.bytes.length) / BALLOON_PAGE_SIZE);
      this.held = new Uint8Array(pages);
      this.heldPerHuge = new Uint16Array(Math.ceil(pages / this.pagesPerHuge));
    }
  }

  /** Pages the guest put in the balloon (page frame numbers of 4 KiB pages). */
  inflate(pfns: ArrayLike<number>): PageCounts {
    const counts = emptyCounts();
    if (this.held === undefined) {
      this.forEachRun(pfns, counts, (addr, len) => {
        counts.accepted += len / BALLOON_PAGE_SIZE;
        this.drop(addr, len, counts);
      });
      return counts;
    }
    for (let i = 0; i < pfns.length; i++) {
      const pfn = pfns[i];
      if (!this.inRam(pfn)) { counts.refused++; continue; }
      if (this.held[pfn] === 1) continue; // a duplicate: already held
      this.held[pfn] = 1;
      counts.accepted++;
      const huge = Math.floor(pfn / this.pagesPerHuge);
      if (++this.heldPerHuge![huge] === this.pagesPerHuge) this.dropHuge(huge, counts);
    }
    return counts;
  }

  /** Pages the guest took back: they already read as zero where they were dropped. */
  deflate(pfns: ArrayLike<number>): PageCounts {
    const counts = emptyCounts();
    for (let i = 0; i < pfns.length; i++) {
      const pfn = pfns[i];
      if (!this.inRam(pfn)) { counts.refused++; continue; }
      if (this.held !== undefined) {
        if (this.held[pfn] === 0) continue;
        this.held[pfn] = 0;
        this.heldPerHuge![Math.floor(pfn / this.pagesPerHuge)]--;
      }
      counts.accepted++;
    }
    return counts;
  }

  /**
   * A free range the guest hinted or reported (already checked to lie in guest RAM by the
   * chain parser, checked again here). On huge pages only the whole huge pages inside it go.
   */
  discardRange(addr: number, len: number): PageCounts {
    const counts = emptyCounts();
    const unit = this.hugePageSize ?? BALLOON_PAGE_SIZE;
    const from = Math.ceil(addr / unit) * unit;
    const to = Math.floor((addr + len) / unit) * unit;
    if (to <= from) return counts;
    if (!this.memory.isValidRange(from, to - from)) {
      counts.refused += (to - from) / BALLOON_PAGE_SIZE;
      return counts;
    }
    counts.accepted += (to - from) / BALLOON_PAGE_SIZE;
    this.drop(from, to - from, counts);
    return counts;
  }

  private inRam(pfn: number): boolean {
    return Number.isInteger(pfn) && pfn >= 0 && this.memory.isValidRange(pfn * BALLOON_PAGE_SIZE, BALLOON_PAGE_SIZE);
  }

  /** Calls `each` once per run of adjacent in-RAM pages inside one region; counts the rest as refused. */
  private forEachRun(pfns: ArrayLike<number>, counts: PageCounts, each: (addr: number, len: number) => void): void {
    let start = -1;
    let end = -1;
    for (let i = 0; i < pfns.length; i++) {
      const pfn = pfns[i];
      if (!this.inRam(pfn)) { counts.refused++; continue; }
      const addr = pfn * BALLOON_PAGE_SIZE;
      if (addr >= start && addr < end) continue; // a repeat inside the current run
      if (addr === end && this.memory.isValidRange(start, end + BALLOON_PAGE_SIZE - start)) {
        end += BALLOON_PAGE_SIZE;
        continue;
      }
      if (start >= 0) each(start, end - start);
      start = addr;
      end = addr + BALLOON_PAGE_SIZE;
    }
    if (start >= 0) each(start, end - start);
  }

  private dropHuge(huge: number, counts: PageCounts): void {
    const size = this.hugePageSize!;
    const addr = huge * size;
    // A huge page that is not wholly guest RAM (never, with RAM in whole huge pages) stays.
    if (this.memory.isValidRange(addr, size)) this.drop(addr, size, counts);
  }

  private drop(addr: number, len: number, counts: PageCounts): void {
    if (this.discard(this.memory.view(addr, len)) === 0) counts.discardedBytes += len;
    else counts.failures++;
  }
}

