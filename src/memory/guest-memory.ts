import { SparklerError } from '../errors';
import { GuestAddress, guestAddress } from './guest-address';

/** One contiguous range of guest RAM and the host bytes behind it (an mmap, or a Buffer in tests). */
export interface GuestRegion {
  readonly start: GuestAddress;
  readonly bytes: Buffer;
  /** Host virtual address of bytes[0], for KVM_SET_USER_MEMORY_REGION; 0n for test buffers. */
  readonly hostAddress: bigint;
}

export class GuestMemoryError extends SparklerError {
  constructor(message: string) {
    super('EGUESTMEM', message);
    this.name = 'GuestMemoryError';
  }
}

/**
 * Guest RAM as a set of non-overlapping regions. Every access is bounds-checked and must lie
 * wholly inside one region: an access that leaves guest RAM or straddles two regions throws
 * GuestMemoryError, so a guest-supplied address can never reach host memory outside guest RAM.
 */
export class GuestMemory {
  readonly regions: readonly GuestRegion[];

  constructor(regions: GuestRegion[]) {
    const sorted = [...regions].sort((a, b) => a.start - b.start);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1];
      if (prev.start + prev.bytes.length > sorted[i].start) {
        throw new GuestMemoryError(`Guest memory regions at 0x${prev.start.toString(16)} and 0x${sorted[i].start.toString(16)} overlap.`);
      }
    }
    this.regions = sorted;
  }

  /** Guest memory backed by ordinary zeroed Buffers, for tests and tools that need no KVM. */
  static fromLayout(layout: ReadonlyArray<{ start: number; size: number }>): GuestMemory {
    return new GuestMemory(layout.map((r) => ({ start: guestAddress(r.start), bytes: Buffer.alloc(r.size), hostAddress: 0n })));
  }

  get totalBytes(): number {
    return this.regions.reduce((sum, r) => sum + r.bytes.length, 0);
  }

  /** A view (no copy) of `length` bytes at `addr`. Throws if the range is not wholly inside one region. */
  view(addr: number, length: number): Buffer {
    const region = this.regionAt(addr, length);
    const offset = addr - region.start;
    return region.bytes.subarray(offset, offset + length);
  }

  /**
   * Copies `length` bytes of `src` from `srcStart` into guest RAM at `addr`, making no Buffer
   * views (a device's hot path: a view per segment cost a third of an RX frame's time).
   * Throws like view() for a guest range outside one region, RangeError outside `src`.
   */
  copyIn(addr: number, src: Uint8Array, srcStart: number, length: number): void {
    if (!Number.isSafeInteger(srcStart) || srcStart < 0 || srcStart + length > src.length) {
      throw new RangeError(`Copying ${length} bytes from offset ${srcStart} of a ${src.length}-byte buffer.`);
    }
    const region = this.regionAt(addr, length);
    const from = srcStart === 0 && length === src.length ? src : new Uint8Array(src.buffer, src.byteOffset + srcStart, length);
    region.bytes.set(from, addr - region.start);
  }

  /** Copies `length` bytes of guest RAM at `addr` into `dst` at `dstStart` (copyIn's reverse). */
  copyOut(addr: number, length: number, dst: Uint8Array, dstStart: number): void {
    if (!Number.isSafeInteger(dstStart) || dstStart < 0 || dstStart + length > dst.length) {
      throw new RangeError(`Copying ${length} bytes to offset ${dstStart} of a ${dst.length}-byte buffer.`);
    }
    const region = this.regionAt(addr, length);
    dst.set(new Uint8Array(region.bytes.buffer, region.bytes.byteOffset + (addr - region.start), length), dstStart);
  }

  /** The region holding all of [addr, addr+length); throws GuestMemoryError if none does. */
  private regionAt(addr: number, length: number): GuestRegion {
    if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(length) || addr < 0 || length < 0) {
      throw new GuestMemoryError(`Invalid guest memory access of ${length} bytes at ${addr}.`);
    }
    for (const region of this.regions) {
      const offset = addr - region.start;
      if (offset >= 0 && offset < region.bytes.length) {
        if (offset + length > region.bytes.length) break;
        return region;
      }
      if (length === 0 && offset === region.bytes.length) return region;
    }
    throw new GuestMemoryError(
      `Guest memory access of ${length} bytes at 0x${addr.toString(16)} is outside guest RAM or straddles two regions.`,
    );
  }

  /** True when [addr, addr+length) lies wholly inside one region. */
  isValidRange(addr: number, length: number): boolean {
    for (const region of this.regions) {
      const offset = addr - region.start;
      if (offset >= 0 && offset + length <= region.bytes.length) return true;
    }
    return false;
  }

  read(addr: GuestAddress | number, length: number): Buffer {
    return Buffer.from(this.view(addr, length));
  }

  write(addr: GuestAddress | number, data: Uint8Array): void {
    this.view(addr, data.length).set(data);
  }

  readU8(addr: number): number { return this.view(addr, 1)[0]; }
  readU16(addr: number): number { return this.view(addr, 2).readUInt16LE(0); }
  readU32(addr: number): number { return this.view(addr, 4).readUInt32LE(0); }
  readU64(addr: number): bigint { return this.view(addr, 8).readBigUInt64LE(0); }
  writeU8(addr: number, v: number): void { this.view(addr, 1)[0] = v; }
  writeU16(addr: number, v: number): void { this.view(addr, 2).writeUInt16LE(v, 0); }
  writeU32(addr: number, v: number): void { this.view(addr, 4).writeUInt32LE(v >>> 0, 0); }
  writeU64(addr: number, v: bigint): void { this.view(addr, 8).writeBigUInt64LE(v, 0); }
}
