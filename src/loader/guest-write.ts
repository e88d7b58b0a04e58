/**
 * Writes that may cross from one guest memory region into the next contiguous one. Large RAM
 * is split into several regions (at most 2 GiB each, see arch/x86_64/layout.ts); GuestMemory
 * refuses an access that straddles two, but a kernel or initrd may legitimately do so.
 */
import { GuestMemory } from '../memory/guest-memory';
import type { ImageSource } from './image-source';

/** True when [addr, addr + length) is backed by guest RAM with no hole. */
export function isRamRange(mem: GuestMemory, addr: number, length: number): boolean {
  if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(length) || addr < 0 || length < 0) return false;
  let cur = addr;
  const end = addr + length;
  if (length === 0) return mem.regions.some((r) => addr >= r.start && addr <= r.start + r.bytes.length);
  while (cur < end) {
    const r = mem.regions.find((g) => cur >= g.start && cur < g.start + g.bytes.length);
    if (!r) return false;
    cur = r.start + r.bytes.length;
  }
  return true;
}

function eachChunk(mem: GuestMemory, addr: number, length: number, fn: (view: Buffer, offset: number) => void): void {
  let done = 0;
  while (done < length) {
    const cur = addr + done;
    const r = mem.regions.find((g) => cur >= g.start && cur < g.start + g.bytes.length);
    // Outside RAM: let GuestMemory raise its own error.
    const n = r ? Math.min(length - done, r.start + r.bytes.length - cur) : length - done;
    fn(mem.view(cur, n), done);
    done += n;
  }
}

export function writeGuest(mem: GuestMemory, addr: number, data: Uint8Array): void {
  eachChunk(mem, addr, data.length, (view, off) => view.set(data.subarray(off, off + view.length)));
}

/**
 * Reads `length` bytes of `src` from `position` straight into guest memory at `addr` (each
 * region's part through a bounds-checked view, no intermediate Buffer). Returns how many bytes
 * were read: fewer than `length` only if the image ended first.
 */
export function readIntoGuest(mem: GuestMemory, addr: number, src: ImageSource, position: number, length: number): number {
  let read = 0;
  let short = false;
  eachChunk(mem, addr, length, (view, off) => {
    if (short) return;
    const n = src.readAt(view, position + off);
    read += n;
    short = n < view.length;
  });
  return read;
}

export function zeroGuest(mem: GuestMemory, addr: number, length: number): void {
  eachChunk(mem, addr, length, (view) => view.fill(0));
}

export function readGuest(mem: GuestMemory, addr: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  eachChunk(mem, addr, length, (view, off) => view.copy(out, off));
  return out;
}
