/**
 * The guest's memory statistics (spec 5.5.6.3): the stats buffer is a packed array of
 * (le16 tag, le64 value). Tags are Linux's VIRTIO_BALLOON_S_*; the names are Firecracker's
 * BalloonStats fields. A guest may send any bytes: unknown tags are reported to the caller and
 * skipped, a trailing partial entry is ignored, values are clamped to Number's exact range.
 */
import { MAX_STAT_ENTRIES, STAT_ENTRY_SIZE } from './constants';

export const STAT_NAMES = [
  'swap_in', 'swap_out', 'major_faults', 'minor_faults', 'free_memory', 'total_memory', 'available_memory',
  'disk_caches', 'hugetlb_allocations', 'hugetlb_failures', 'oom_kill', 'alloc_stall', 'async_scan',
  'direct_scan', 'async_reclaim', 'direct_reclaim',
] as const;
export type StatName = (typeof STAT_NAMES)[number];
export type GuestStats = Partial<Record<StatName, number>>;

export interface ParsedStats {
  stats: GuestStats;
  unknownTags: number[];
}

/** Parses a stats buffer; later entries of a tag overwrite earlier ones. */
export function parseStats(bytes: Buffer): ParsedStats {
  const stats: GuestStats = {};
  const unknownTags: number[] = [];
  const entries = Math.min(Math.floor(bytes.length / STAT_ENTRY_SIZE), MAX_STAT_ENTRIES);
  for (let i = 0; i < entries; i++) {
    const tag = bytes.readUInt16LE(i * STAT_ENTRY_SIZE);
    const raw = bytes.readBigUInt64LE(i * STAT_ENTRY_SIZE + 2);
    const name = STAT_NAMES[tag];
    if (name === undefined) {
      unknownTags.push(tag);
      continue;
    }
    stats[name] = raw > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(raw);
  }
  return { stats, unknownTags };
}

/** A stats buffer as a driver writes it (tests, and the e2e tools). */
export function encodeStats(entries: ReadonlyArray<[number, bigint | number]>): Buffer {
  const out = Buffer.alloc(entries.length * STAT_ENTRY_SIZE);
  entries.forEach(([tag, value], i) => {
    out.writeUInt16LE(tag, i * STAT_ENTRY_SIZE);
    out.writeBigUInt64LE(BigInt(value), i * STAT_ENTRY_SIZE + 2);
  });
  return out;
}
