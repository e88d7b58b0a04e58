/**
 * The device side of a split virtqueue (spec 2.7): the descriptor table, the available ring
 * (driver area) and the used ring (device area). The transport fills in the driver-written
 * configuration; once the device is activated, devices pop chains and add used entries.
 *
 * The ring indices the guest writes concurrently from its vCPUs (avail.idx, used_event) and the
 * ones we publish (used.idx, avail_event) are accessed with Atomics on aligned 16-bit views:
 * a plain Buffer.readUInt16LE reads two bytes separately and could see a torn index, and a
 * seq-cst Atomics.store is a full fence on x86, which orders "publish used.idx, then read
 * used_event" (spec 2.7.7) and "publish avail_event, then re-read avail.idx" (spec 2.7.10).
 */
import { GuestMemory } from '../../memory/guest-memory';
import {
  AVAIL_F_NO_INTERRUPT, AVAIL_RING_ALIGN, availRingBytes, DESC_TABLE_ALIGN, descTableBytes, FeatureBit,
  USED_RING_ALIGN, usedRingBytes,
} from './constants';
import { checkedRange, ChainContext, DescriptorChain, parseChain } from './descriptor-chain';
import { hasFeature } from './features';

/** Where a queue reports what it logs and the errors that leave it unusable. */
export interface QueueHost {
  error(message: string): void;
  /** The queue's rings are corrupt: the device must be reset by the driver (DEVICE_NEEDS_RESET). */
  fatal(message: string): void;
}

/** vring_need_event (spec 2.7.7.2): did used.idx move past `event` going from `oldIdx` to `newIdx`? */
export function needsEvent(event: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - event - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}

interface Rings {
  /** flags, idx, ring[size], used_event */
  readonly avail: Uint16Array;
  /** flags, idx, (id, len) as four u16 each, avail_event */
  readonly used: Uint16Array;
  /** The used elements as (id, len) u32 pairs. */
  readonly usedElems: Uint32Array;
  readonly chain: ChainContext;
}

/** Queue.saveState's plain data. */
export interface QueueState {
  size: number; ready: boolean; descTable: bigint; availRing: bigint; usedRing: bigint;
  activated: boolean; eventIdx: boolean; broken: boolean;
  nextAvailIdx: number; nextUsedIdx: number; lastCheckedUsed: number;
}

export class Queue {
  // Driver-written configuration (spec 4.2.2: QueueNum, QueueReady, QueueDesc/Driver/Device).
  size: number;
  ready = false;
  descTable = 0n;
  availRing = 0n;
  usedRing = 0n;

  private rings: Rings | undefined;
  private host: QueueHost | undefined;
  private label = 'virtio queue';
  private eventIdx = false;
  private broken = false;
  private nextAvailIdx = 0;
  private nextUsedIdx = 0;
  /** used.idx when we last decided whether to notify (the "old" of vring_need_event). */
  private lastCheckedUsed = 0;

  constructor(readonly maxSize: number) {
    this.size = maxSize;
  }

  get activated(): boolean { return this.rings !== undefined; }
  get nextAvail(): number { return this.nextAvailIdx; }
  get nextUsed(): number { return this.nextUsedIdx; }

  /** The driver's configuration and the device's ring positions, as plain data for a snapshot. */
  saveState(rewindAvail = 0): QueueState {
    return {
      size: this.size, ready: this.ready, descTable: this.descTable, availRing: this.availRing, usedRing: this.usedRing,
      activated: this.activated, eventIdx: this.eventIdx, broken: this.broken,
      // Chains the device popped but still holds (a rate-limited request) are popped again after a restore.
      nextAvailIdx: (this.nextAvailIdx - rewindAvail) & 0xffff, nextUsedIdx: this.nextUsedIdx, lastCheckedUsed: this.lastCheckedUsed,
    };
  }

  /**
   * Puts a saved state back. An activated queue maps its rings again, as activate() does, but
   * leaves them as the guest's memory holds them: a restore never rewrites the guest's rings.
   */
  restoreState(s: QueueState, memory: GuestMemory, features: bigint, host: QueueHost, label: string): string | undefined {
    this.reset();
    ({ size: this.size, ready: this.ready, descTable: this.descTable, availRing: this.availRing, usedRing: this.usedRing } = s);
    if (!s.activated) return undefined;
    const why = this.validate(memory) ?? this.mapRings(memory, features, host, label);
    if (why !== undefined) return why;
    ({ eventIdx: this.eventIdx, broken: this.broken, nextAvailIdx: this.nextAvailIdx, nextUsedIdx: this.nextUsedIdx, lastCheckedUsed: this.lastCheckedUsed } = s);
    return undefined;
  }

  /** Back to the state after a device reset (spec 4.2.2.1: QueueReady reads 0 again). */
  reset(): void {
    this.size = this.maxSize;
    this.ready = false;
    this.descTable = this.availRing = this.usedRing = 0n;
    this.rings = this.host = undefined;
    this.eventIdx = this.broken = false;
    this.nextAvailIdx = this.nextUsedIdx = this.lastCheckedUsed = 0;
  }

  /** Stops using the rings but keeps the driver's configuration (activation failed part way). */
  deactivate(): void {
    this.rings = this.host = undefined;
  }

  /** Why this queue cannot be used as configured, or undefined when it can. */
  validate(memory: GuestMemory): string | undefined {
    if (!this.ready) return 'it is not ready';
    if (this.size < 1 || this.size > this.maxSize || (this.size & (this.size - 1)) !== 0) {
      return `its size ${this.size} is not a power of two between 1 and ${this.maxSize}`;
    }
    const parts: Array<[string, bigint, number, number]> = [
      ['descriptor table', this.descTable, descTableBytes(this.size), DESC_TABLE_ALIGN],
      ['available ring', this.availRing, availRingBytes(this.size), AVAIL_RING_ALIGN],
      ['used ring', this.usedRing, usedRingBytes(this.size), USED_RING_ALIGN],
    ];
    for (const [name, addr, bytes, align] of parts) {
      if (addr % BigInt(align) !== 0n) return `its ${name} at 0x${addr.toString(16)} is not ${align}-byte aligned`;
      const where = checkedRange(memory, Number(addr & 0xffff_ffffn), Number(addr >> 32n), bytes);
      if (typeof where === 'string') return `its ${name} of ${bytes} bytes ${where}`;
    }
    return undefined;
  }

  /**
   * Start using the rings: call only after validate() returned undefined. Returns why the rings
   * cannot be mapped (a host buffer not aligned like guest memory), or undefined.
   */
  activate(memory: GuestMemory, features: bigint, host: QueueHost, label: string): string | undefined {
    const why = this.mapRings(memory, features, host, label);
    if (why !== undefined || !this.rings) return why;
    this.nextAvailIdx = this.nextUsedIdx = this.lastCheckedUsed = 0;
    // The device area is ours: start it from a known state even if the driver reused old memory.
    Atomics.store(this.rings.used, 0, 0);
    Atomics.store(this.rings.used, 1, 0);
    if (this.eventIdx) Atomics.store(this.rings.used, 2 + 4 * this.size, 0);
    return undefined;
  }

  private mapRings(memory: GuestMemory, features: bigint, host: QueueHost, label: string): string | undefined {
    const desc = memory.view(Number(this.descTable), descTableBytes(this.size));
    const avail = memory.view(Number(this.availRing), availRingBytes(this.size));
    const used = memory.view(Number(this.usedRing), usedRingBytes(this.size));
    if (avail.byteOffset % AVAIL_RING_ALIGN !== 0 || used.byteOffset % USED_RING_ALIGN !== 0) {
      return 'the host buffer behind its rings is not aligned';
    }
    this.rings = {
      avail: new Uint16Array(avail.buffer, avail.byteOffset, avail.length / 2),
      used: new Uint16Array(used.buffer, used.byteOffset, used.length / 2),
      usedElems: new Uint32Array(used.buffer, used.byteOffset + 4, 2 * this.size),
      chain: { memory, table: desc, queueSize: this.size, indirect: hasFeature(features, FeatureBit.RING_INDIRECT_DESC) },
    };
    this.host = host;
    this.label = label;
    this.eventIdx = hasFeature(features, FeatureBit.RING_EVENT_IDX);
    this.broken = false;
    return undefined;
  }

  /**
   * The next available chain, or undefined when there is none (or the queue is broken).
   * A malformed chain is logged and returned to the driver with a used length of 0, and the
   * next one is tried; a corrupt ring (an index out of range) marks the device as needing reset.
   */
  pop(): DescriptorChain | undefined {
    const r = this.rings;
    if (r === undefined || this.broken) return undefined;
    for (;;) {
      const availIdx = Atomics.load(r.avail, 1);
      const pending = (availIdx - this.nextAvailIdx) & 0xffff;
      if (pending === 0) return undefined;
      if (pending > this.size) {
        this.fail(`the driver's available index ${availIdx} is ${pending} entries ahead of the device's ${this.nextAvailIdx}, more than the queue size ${this.size}`);
        return undefined;
      }
      // Loads are not reordered with older loads on x86, so the entry is read after avail.idx.
      const head = r.avail[2 + (this.nextAvailIdx & (this.size - 1))];
      this.nextAvailIdx = (this.nextAvailIdx + 1) & 0xffff;
      // Ask to be notified once the driver makes the entry after this one available (spec 2.7.10).
      if (this.eventIdx) Atomics.store(r.used, 2 + 4 * this.size, this.nextAvailIdx);
      if (head >= this.size) {
        this.fail(`the available ring names descriptor ${head}, outside a table of ${this.size}`);
        return undefined;
      }
      let chain: DescriptorChain | string;
      try {
        chain = parseChain(r.chain, head);
      } catch (err) {
        chain = `reading it failed: ${(err as Error).message}`; // cannot happen: every range is checked first
      }
      if (typeof chain !== 'string') return chain;
      this.host?.error(`${this.label}: dropping the chain at descriptor ${head}: ${chain}.`);
      this.addUsed(head, 0);
      if (this.broken) return undefined;
    }
  }

  /** Returns the chain whose head is `head` to the driver, `len` bytes written into it (spec 2.7.8). */
  addUsed(head: number, len: number): void {
    const r = this.rings;
    if (r === undefined || this.broken) return;
    if (!Number.isInteger(head) || head < 0 || head >= this.size) {
      this.host?.error(`${this.label}: the device returned descriptor ${head}, outside a table of ${this.size}; ignored.`);
      return;
    }
    // The used ring is ours alone (spec 2.7.8): a different idx there means the driver wrote it.
    const seen = Atomics.load(r.used, 1);
    if (seen !== this.nextUsedIdx) {
      this.fail(`the driver overwrote the used ring (its index reads ${seen}, the device wrote ${this.nextUsedIdx})`);
      return;
    }
    const slot = this.nextUsedIdx & (this.size - 1);
    r.usedElems[2 * slot] = head;
    r.usedElems[2 * slot + 1] = len >>> 0;
    this.nextUsedIdx = (this.nextUsedIdx + 1) & 0xffff;
    Atomics.store(r.used, 1, this.nextUsedIdx); // publishes the element: stores stay in order on x86
  }

  /**
   * Whether the driver wants a used-buffer notification for the entries added since the last
   * call: with VIRTIO_F_EVENT_IDX by used_event (spec 2.7.7.2), otherwise by avail.flags.
   */
  needsNotification(): boolean {
    const r = this.rings;
    if (r === undefined || this.broken) return false;
    const old = this.lastCheckedUsed;
    this.lastCheckedUsed = this.nextUsedIdx;
    if (old === this.nextUsedIdx) return false;
    if (this.eventIdx) return needsEvent(Atomics.load(r.avail, 2 + this.size), this.nextUsedIdx, old);
    return (Atomics.load(r.avail, 0) & AVAIL_F_NO_INTERRUPT) === 0;
  }

  private fail(message: string): void {
    this.broken = true;
    this.host?.fatal(`${this.label}: ${message}`);
  }
}
