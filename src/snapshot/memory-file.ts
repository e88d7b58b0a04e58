/**
 * The guest memory file: every region's bytes, one after the other in guest-address order (the
 * layout Firecracker's memory files and page-fault handlers use: a region's file offset is the
 * sum of the sizes before it). Full writes every page; Diff writes only the pages given as dirty
 * into a file of the full size, leaving the rest as they were (holes in a new file), so a Diff
 * written over a copy of the base file, or merged onto it, is the memory at that moment.
 */
import * as fs from 'node:fs';
import type { GuestMemory } from '../memory/guest-memory';
import { native, NativeShim } from '../native';

export const PAGE_SIZE = 4096;

export interface MemoryRegionLayout {
  /** Guest physical address. */
  start: number;
  size: number;
  /** Where the region's bytes start in the memory file. */
  fileOffset: number;
}

export function memoryFileLayout(memory: GuestMemory): MemoryRegionLayout[] {
  let offset = 0;
  return memory.regions.map((r) => {
    const layout = { start: r.start as number, size: r.bytes.length, fileOffset: offset };
    offset += r.bytes.length;
    return layout;
  });
}

/** Writes all of `bytes` at `position`, however many write(2)s it takes. */
function writeAllAt(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done, position + done);
}

/** Full: the whole of guest RAM. Writes a new file (any old one is replaced). */
export function writeFullMemoryFile(memory: GuestMemory, path: string): void {
  const fd = fs.openSync(path, 'w', 0o600);
  try {
    let offset = 0;
    for (const region of memory.regions) {
      writeAllAt(fd, region.bytes, offset);
      offset += region.bytes.length;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Diff: the pages whose bit is set in `dirty(regionIndex)` (bit n of the bitmap's little-endian
 * u64 words = page n of the region, KVM_GET_DIRTY_LOG's layout), written in runs. The file keeps
 * what it held elsewhere and gets the full apparent size. Returns the number of pages written.
 */
export function writeDiffMemoryFile(memory: GuestMemory, path: string, dirty: (regionIndex: number) => Uint8Array): number {
  const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o600);
  let pages = 0;
  try {
    let offset = 0;
    memory.regions.forEach((region, index) => {
      const bitmap = dirty(index);
      const pageCount = region.bytes.length / PAGE_SIZE;
      for (let page = 0; page < pageCount;) {
        if (!isDirty(bitmap, page)) { page++; continue; }
        let end = page + 1;
        while (end < pageCount && isDirty(bitmap, end)) end++;
        writeAllAt(fd, region.bytes.subarray(page * PAGE_SIZE, end * PAGE_SIZE), offset + page * PAGE_SIZE);
        pages += end - page;
        page = end;
      }
      offset += region.bytes.length;
    });
    fs.ftruncateSync(fd, offset);
  } finally {
    fs.closeSync(fd);
  }
  return pages;
}

export function isDirty(bitmap: Uint8Array, page: number): boolean {
  return (bitmap[page >>> 3] & (1 << (page & 7))) !== 0;
}

/** A bitmap with room for one bit per page of `bytes`, rounded up to whole u64 words as KVM wants. */
export function dirtyBitmapFor(bytes: number): Uint8Array {
  const pages = Math.ceil(bytes / PAGE_SIZE);
  return new Uint8Array(Math.ceil(pages / 64) * 8);
}

/**
 * The resident pages of a region (mincore(2)) as a dirty bitmap: what a Diff without KVM's dirty
 * log writes. A superset of the pages written since the last snapshot: a page never touched since
 * boot (or since the restore mapped the memory file) is not resident and reads as the layer
 * below, so leaving it out loses nothing; a page only read is written needlessly. mincore does
 * not count a page the host swapped out, so those are added from /proc/self/pagemap (when /proc
 * is there: a jail without it relies on the host not swapping guest memory, as Firecracker does).
 */
export function residentBitmap(bytes: Uint8Array, shim: Pick<NativeShim, 'mincore' | 'addressOf'> = native(), pagemapPath = '/proc/self/pagemap'): Uint8Array {
  const pages = Math.ceil(bytes.length / PAGE_SIZE);
  const vector = new Uint8Array(pages);
  const rc = shim.mincore(bytes, vector);
  if (rc < 0) throw new Error(`mincore of guest memory failed (errno ${-rc})`);
  swappedInto(vector, Number(shim.addressOf(bytes)) / PAGE_SIZE, pagemapPath);
  const bitmap = dirtyBitmapFor(bytes.length);
  for (let page = 0; page < pages; page++) if (vector[page] & 1) bitmap[page >> 3] |= 1 << (page & 7);
  return bitmap;
}

/** Sets bit 0 of vector[i] where pagemap's entry for page firstPage + i has bit 62 (swapped). */
function swappedInto(vector: Uint8Array, firstPage: number, pagemapPath: string): void {
  let fd: number;
  try {
    fd = fs.openSync(pagemapPath, 'r');
  } catch {
    return;
  }
  try {
    const chunk = Buffer.alloc(8 * 4096);
    for (let done = 0; done < vector.length;) {
      const want = Math.min(chunk.length / 8, vector.length - done);
      const got = fs.readSync(fd, chunk, 0, want * 8, (firstPage + done) * 8) >> 3;
      if (got === 0) return;
      for (let i = 0; i < got; i++) if (chunk[i * 8 + 7] & 0x40) vector[done + i] |= 1;
      done += got;
    }
  } finally {
    fs.closeSync(fd);
  }
}

const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const ENXIO = 6;

/**
 * The data ranges of a sparse file ([start, end) byte pairs) from SEEK_DATA/SEEK_HOLE, or
 * undefined where the file system cannot say (then every page that is not all zero is data).
 */
function dataRanges(fd: number, size: number, shim: NativeShim): Array<[number, number]> | undefined {
  const ranges: Array<[number, number]> = [];
  for (let at = 0; at < size;) {
    const start = shim.lseek(fd, at, SEEK_DATA);
    if (start === -ENXIO) break;
    if (start < 0) return undefined;
    const end = shim.lseek(fd, start, SEEK_HOLE);
    if (end < 0) return undefined;
    ranges.push([start, Math.min(end, size)]);
    at = end;
  }
  return ranges;
}

/**
 * `sparkler snapshot merge`: copies the data ranges of the Diff file `diffPath` onto the base
 * memory file `basePath` (a page the Diff wrote is data even where it is all zero). Returns the
 * bytes copied.
 */
export function mergeDiffOnto(basePath: string, diffPath: string, shim: NativeShim = native()): number {
  const diff = fs.openSync(diffPath, 'r');
  const base = fs.openSync(basePath, 'r+');
  let copied = 0;
  try {
    const size = fs.fstatSync(diff).size;
    const ranges = dataRanges(diff, size, shim);
    const chunk = Buffer.alloc(2 * 1024 * 1024);
    for (const [start, end] of ranges ?? [[0, size]]) {
      for (let at = start; at < end; at += chunk.length) {
        const n = fs.readSync(diff, chunk, 0, Math.min(chunk.length, end - at), at);
        for (let p = 0; p < n; p += PAGE_SIZE) {
          const page = chunk.subarray(p, Math.min(p + PAGE_SIZE, n));
          if (ranges || page.some((b) => b !== 0)) {
            writeAllAt(base, page, at + p);
            copied += page.length;
          }
        }
      }
    }
    if (fs.fstatSync(base).size < size) fs.ftruncateSync(base, size);
  } finally {
    fs.closeSync(diff);
    fs.closeSync(base);
  }
  return copied;
}
