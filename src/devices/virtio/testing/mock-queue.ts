/**
 * The driver's side of a split virtqueue, for tests: it lays out a descriptor table, available
 * ring and used ring in a GuestMemory and lets a test write any descriptor (hostile ones
 * included), make chains available, and read back what the device put in the used ring.
 * It writes guest memory directly, the way a guest would, not through the device's code.
 */
import { GuestMemory } from '../../../memory/guest-memory';
import { availRingBytes, DescFlag, DESCRIPTOR_SIZE, descTableBytes } from '../constants';

export interface RawDescriptor {
  /** A bigint allows addresses beyond 2^53, up to 2^64 - 1. */
  addr: number | bigint;
  len: number;
  flags?: number;
  next?: number;
}

/** A buffer in a chain: device-readable unless `write`. */
export interface BufferSpec {
  addr: number;
  len: number;
  write?: boolean;
}

/** Writes descriptor `index` of the table at `table` (the ring's table or an indirect one). */
export function writeDescriptor(memory: GuestMemory, table: number, index: number, d: RawDescriptor): void {
  const at = table + index * DESCRIPTOR_SIZE;
  memory.writeU64(at, BigInt.asUintN(64, BigInt(d.addr)));
  memory.writeU32(at + 8, d.len);
  memory.writeU16(at + 12, d.flags ?? 0);
  memory.writeU16(at + 14, d.next ?? 0);
}

/** Descriptors for `buffers`, linked in order with NEXT (next = firstIndex + i + 1). */
export function linkedDescriptors(buffers: BufferSpec[], firstIndex = 0): RawDescriptor[] {
  return buffers.map((b, i) => ({
    addr: b.addr,
    len: b.len,
    flags: (b.write ? DescFlag.WRITE : 0) | (i < buffers.length - 1 ? DescFlag.NEXT : 0),
    next: i < buffers.length - 1 ? firstIndex + i + 1 : 0,
  }));
}

export class MockQueue {
  readonly desc: number;
  readonly avail: number;
  readonly used: number;
  /** Next free descriptor for addChain(); wraps around the table. */
  private nextFree = 0;

  /** Places the three parts back to back from `base` (16-byte aligned), as Linux does. */
  constructor(readonly memory: GuestMemory, base: number, readonly size: number) {
    this.desc = base;
    this.avail = base + descTableBytes(size);
    this.used = align(this.avail + availRingBytes(size), 4);
  }

  /** Writes descriptor `index` of the ring's own table. */
  setDescriptor(index: number, d: RawDescriptor): void {
    writeDescriptor(this.memory, this.desc, index, d);
  }

  /** Writes `buffers` as a linked chain into free table entries and makes it available; returns its head. */
  addChain(buffers: BufferSpec[]): number {
    const head = this.nextFree;
    const descs = linkedDescriptors(buffers);
    descs.forEach((d, i) => {
      const index = (head + i) % this.size;
      this.setDescriptor(index, { ...d, next: (head + i + 1) % this.size });
    });
    this.nextFree = (head + buffers.length) % this.size;
    this.offer(head);
    return head;
  }

  /** Writes `buffers` as an indirect table at `table` and makes a one-descriptor chain pointing to it available. */
  addIndirectChain(table: number, buffers: BufferSpec[]): number {
    linkedDescriptors(buffers).forEach((d, i) => writeDescriptor(this.memory, table, i, d));
    const head = this.nextFree;
    this.setDescriptor(head, { addr: table, len: buffers.length * DESCRIPTOR_SIZE, flags: DescFlag.INDIRECT });
    this.nextFree = (head + 1) % this.size;
    this.offer(head);
    return head;
  }

  /** Puts `head` in the next available ring slot and publishes it by bumping avail.idx. */
  offer(head: number): void {
    const idx = this.availIdx;
    this.memory.writeU16(this.avail + 4 + 2 * (idx % this.size), head);
    this.availIdx = (idx + 1) & 0xffff;
  }

  get availIdx(): number { return this.memory.readU16(this.avail + 2); }
  set availIdx(v: number) { this.memory.writeU16(this.avail + 2, v); }
  set availFlags(v: number) { this.memory.writeU16(this.avail, v); }
  /** used_event, after the available ring (read by the device with VIRTIO_F_EVENT_IDX). */
  set usedEvent(v: number) { this.memory.writeU16(this.avail + 4 + 2 * this.size, v); }

  get usedFlags(): number { return this.memory.readU16(this.used); }
  get usedIdx(): number { return this.memory.readU16(this.used + 2); }
  set usedIdx(v: number) { this.memory.writeU16(this.used + 2, v); }
  /** avail_event, after the used ring (written by the device with VIRTIO_F_EVENT_IDX). */
  get availEvent(): number { return this.memory.readU16(this.used + 4 + 8 * this.size); }

  /** Used element `n` (counting from 0, as used.idx does; wraps around the ring). */
  usedElem(n: number): { id: number; len: number } {
    const at = this.used + 4 + 8 * (n % this.size);
    return { id: this.memory.readU32(at), len: this.memory.readU32(at + 4) };
  }

  /** Every used element between `from` and the current used.idx. */
  usedSince(from: number): Array<{ id: number; len: number }> {
    const out = [];
    for (let n = from; n !== this.usedIdx; n = (n + 1) & 0xffff) out.push(this.usedElem(n));
    return out;
  }
}

function align(value: number, to: number): number {
  return Math.ceil(value / to) * to;
}
