/**
 * Descriptor chains of a split virtqueue (spec 2.7.5, "The Virtqueue Descriptor Table", and
 * 2.7.5.3, "Indirect Descriptors"). A chain is walked and validated completely before a device
 * sees it, so devices only ever get buffers that lie inside guest RAM: a hostile chain becomes
 * an error string here, never a throw and never an access outside guest memory.
 */
import { GuestAddress } from '../../memory/guest-address';
import { GuestMemory } from '../../memory/guest-memory';
import { DescFlag, DESCRIPTOR_SIZE, MAX_INDIRECT_DESCRIPTORS } from './constants';

/** One validated buffer: [addr, addr + len) lies wholly inside one guest RAM region. */
export interface Segment {
  readonly addr: GuestAddress;
  readonly len: number;
}

const U32_LIMIT = 0x1_0000_0000;
/** hi words at or above this put the address at or above 2^53, far beyond any guest RAM. */
const HI_UNSAFE = 0x20_0000;

/** A chain the driver made available: device-readable segments first, then device-writable ones. */
export class DescriptorChain {
  constructor(
    /** Index of the head descriptor: what goes back in the used ring. */
    readonly head: number,
    readonly readable: readonly Segment[],
    readonly writable: readonly Segment[],
    readonly readableBytes: number,
    readonly writableBytes: number,
  ) {}

  /** Copies up to `length` device-readable bytes starting `offset` bytes into the chain (shorter at the end). */
  read(memory: GuestMemory, offset: number, length: number): Buffer {
    return this.readInto(memory, offset, Buffer.alloc(Math.max(0, Math.min(length, this.readableBytes - offset))));
  }

  /**
   * Copies device-readable bytes from `offset` into all of `dst` (a buffer the caller keeps, so
   * a hot path allocates nothing) and returns it; bytes past the chain's end are left as they were.
   */
  readInto(memory: GuestMemory, offset: number, dst: Buffer): Buffer {
    if (offset < 0) throw new RangeError(`A chain offset cannot be negative (${offset}).`);
    let done = 0;
    walk(this.readable, offset, Math.min(dst.length, this.readableBytes - offset), (addr, n) => {
      memory.copyOut(addr, n, dst, done);
      done += n;
    });
    return dst;
  }

  /**
   * Copies `data` (or its bytes from `from` to `to`) into the device-writable bytes starting
   * `offset` bytes in; returns how many fitted.
   */
  write(memory: GuestMemory, offset: number, data: Uint8Array, from = 0, to = data.length): number {
    if (offset < 0) throw new RangeError(`A chain offset cannot be negative (${offset}).`);
    if (from < 0 || to > data.length || from > to) throw new RangeError(`Bytes ${from}..${to} are not in a ${data.length}-byte buffer.`);
    const total = Math.max(0, Math.min(to - from, this.writableBytes - offset));
    let done = 0;
    walk(this.writable, offset, total, (addr, n) => {
      memory.copyIn(addr, data, from + done, n);
      done += n;
    });
    return done;
  }
}

/** Calls `each` for the pieces of `segments` covering `length` bytes from `offset`. */
function walk(segments: readonly Segment[], offset: number, length: number, each: (addr: number, n: number) => void): void {
  let skip = offset;
  let left = length;
  for (const s of segments) {
    if (left <= 0) return;
    if (skip >= s.len) {
      skip -= s.len;
      continue;
    }
    const n = Math.min(s.len - skip, left);
    each(s.addr + skip, n);
    left -= n;
    skip = 0;
  }
}

/** What the queue knows when it walks a chain. */
export interface ChainContext {
  readonly memory: GuestMemory;
  /** View of the ring's descriptor table (queueSize entries). */
  readonly table: Buffer;
  readonly queueSize: number;
  /** VIRTIO_F_INDIRECT_DESC was negotiated. */
  readonly indirect: boolean;
}

/**
 * Walks the chain starting at `head` (already checked to be < queueSize) and returns it, or a
 * sentence saying why it is malformed. Each descriptor is read from guest memory exactly once,
 * so a driver rewriting the table while we walk it cannot make a checked value change later.
 */
export function parseChain(ctx: ChainContext, head: number): DescriptorChain | string {
  let table = ctx.table;
  let tableSize = ctx.queueSize;
  let budget = ctx.queueSize; // a chain visits each entry of its table at most once (spec 2.7.5)
  let inIndirect = false;
  let index = head;
  const readable: Segment[] = [];
  const writable: Segment[] = [];
  let readableBytes = 0;
  let writableBytes = 0;

  for (;;) {
    const where = inIndirect ? `indirect descriptor ${index}` : `descriptor ${index}`;
    if (index >= tableSize) return `${where} is past the end of a table of ${tableSize}`;
    if (budget-- === 0) return `the chain has more than ${tableSize} descriptors in one table (a loop)`;
    const off = index * DESCRIPTOR_SIZE;
    const lo = table.readUInt32LE(off);
    const hi = table.readUInt32LE(off + 4);
    const len = table.readUInt32LE(off + 8);
    const flags = table.readUInt16LE(off + 12);
    const next = table.readUInt16LE(off + 14);

    if (flags & DescFlag.INDIRECT) {
      // spec 2.7.5.3.1: only with the feature, one level deep, never combined with NEXT, whole entries.
      if (!ctx.indirect) return `${where} is indirect but VIRTIO_F_INDIRECT_DESC was not negotiated`;
      if (inIndirect) return `${where} points to an indirect table from inside an indirect table`;
      if (flags & DescFlag.NEXT) return `${where} sets both INDIRECT and NEXT`;
      if (len === 0 || len % DESCRIPTOR_SIZE !== 0) return `${where} has an indirect table length of ${len}, not a non-zero multiple of 16`;
      if (len / DESCRIPTOR_SIZE > MAX_INDIRECT_DESCRIPTORS) return `${where} has an indirect table of ${len / DESCRIPTOR_SIZE} entries, more than ${MAX_INDIRECT_DESCRIPTORS}`;
      const addr = checkedRange(ctx.memory, lo, hi, len);
      if (typeof addr === 'string') return `${where}: the indirect table ${addr}`;
      table = ctx.memory.view(addr, len); // cannot throw: checkedRange validated the range
      tableSize = budget = len / DESCRIPTOR_SIZE;
      inIndirect = true;
      index = 0;
      continue;
    }

    const addr = checkedRange(ctx.memory, lo, hi, len);
    if (typeof addr === 'string') return `${where}: the buffer ${addr}`;
    // spec 2.7.4.2: all device-readable buffers come before the device-writable ones.
    if (flags & DescFlag.WRITE) {
      writableBytes += len;
      writable.push({ addr: addr as GuestAddress, len });
    } else {
      if (writable.length > 0) return `${where} is device-readable but follows a device-writable descriptor`;
      readableBytes += len;
      readable.push({ addr: addr as GuestAddress, len });
    }
    // spec 2.7.5.2: a chain is never 2^32 bytes long in total, so every byte count fits a u32.
    if (readableBytes + writableBytes >= U32_LIMIT) return `the chain's buffers add up to 4 GiB or more`;
    if (!(flags & DescFlag.NEXT)) break;
    index = next;
  }
  return new DescriptorChain(head, readable, writable, readableBytes, writableBytes);
}

/** The guest address of [lo/hi, +len) if it lies wholly in one RAM region, else why not. */
export function checkedRange(memory: GuestMemory, lo: number, hi: number, len: number): number | string {
  if (hi >= HI_UNSAFE) {
    const end = ((BigInt(hi) << 32n) | BigInt(lo)) + BigInt(len);
    const where = `0x${((BigInt(hi) << 32n) | BigInt(lo)).toString(16)}`;
    return end > 1n << 64n ? `at ${where} (+${len}) wraps past the end of the 64-bit address space` : `at ${where} is outside guest RAM`;
  }
  const addr = hi * U32_LIMIT + lo;
  if (!memory.isValidRange(addr, len)) return `at 0x${addr.toString(16)} (+${len}) is outside guest RAM or straddles two regions`;
  return addr;
}
