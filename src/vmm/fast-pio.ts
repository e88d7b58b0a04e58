/**
 * The vCPU loop's port-I/O fast path, TypeScript's side (the C side is native/fast-pio.c): a
 * table of at most 8 rules, one 32-bit word each, that the vCPU threads read after every exit,
 * and a byte ring they append written bytes to. TypeScript decides what is fast and rewrites a
 * rule whenever the device's registers change; C never decides anything. Layout (u32 words):
 *   [0..7] rules: 0 = empty, else port | out << 16 | action << 17 | value << 24
 *   [8] tail (C)  [9] head (here)  [10] C's spinlock  [11] notify (C sets, the drain clears)
 *   [12] exits answered in C  [13] writes refused for a full ring
 *   [14] byte offset of KVM's coalesced ring in kvm_run's mapping (0: none): a constant read
 *        that finds writes queued there signals the eventfd, so they are drained too
 *   bytes 64.. the ring
 */
export const FAST_PIO_RULES = 8;
export const FAST_PIO_RING_OFFSET = 64;
export const FAST_PIO_RING_SIZE = 16384;
export const FAST_PIO_BYTES = FAST_PIO_RING_OFFSET + FAST_PIO_RING_SIZE;

const TAIL = 8;
const HEAD = 9;
const NOTIFY = 11;
const HITS = 12;
const FULL = 13;
const COALESCED = 14;

/** A read answered with a constant byte, or a written byte appended to the ring. */
export type FastPioRule =
  | { port: number; action: 'read-constant'; value: number }
  | { port: number; action: 'write-ring' };

export function encodeRule(rule: FastPioRule): number {
  if (!Number.isInteger(rule.port) || rule.port < 0 || rule.port > 0xffff) throw new RangeError(`port ${rule.port} is not a 16-bit port`);
  if (rule.action === 'write-ring') return (rule.port | (1 << 16) | (2 << 17)) >>> 0;
  if (!Number.isInteger(rule.value) || rule.value < 0 || rule.value > 0xff) throw new RangeError(`value ${rule.value} is not a byte`);
  return (rule.port | (1 << 17) | (rule.value << 24)) >>> 0;
}

export class FastPioTable {
  private readonly words: Uint32Array;
  private readonly ring: Uint8Array;

  constructor(readonly buffer: ArrayBuffer) {
    if (buffer.byteLength !== FAST_PIO_BYTES) throw new RangeError(`a fast-path table is ${FAST_PIO_BYTES} bytes, not ${buffer.byteLength}`);
    this.words = new Uint32Array(buffer, 0, FAST_PIO_RING_OFFSET / 4);
    this.ring = new Uint8Array(buffer, FAST_PIO_RING_OFFSET, FAST_PIO_RING_SIZE);
  }

  /** Sets (or with undefined, clears) one rule; the vCPU threads see it from their next exit on. */
  setRule(slot: number, rule: FastPioRule | undefined): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= FAST_PIO_RULES) throw new RangeError(`rule slot ${slot} is out of 0..${FAST_PIO_RULES - 1}`);
    Atomics.store(this.words, slot, rule ? encodeRule(rule) : 0);
  }

  /** Where KVM's coalesced ring is in every vCPU's kvm_run mapping (bytes; 0: not watched). */
  watchCoalescedRing(offset: number): void {
    Atomics.store(this.words, COALESCED, offset);
  }

  rule(slot: number): number {
    return Atomics.load(this.words, slot);
  }

  /** Any of the 16 header words (debug dumps). */
  word(index: number): number {
    return Atomics.load(this.words, index);
  }

  /** Exits the vCPU threads answered themselves. */
  get hits(): number {
    return Atomics.load(this.words, HITS);
  }

  /** Writes that went the usual way because the ring was full. */
  get fullRefusals(): number {
    return Atomics.load(this.words, FULL);
  }

  /** Bytes waiting in the ring. */
  get pending(): number {
    return (Atomics.load(this.words, TAIL) - Atomics.load(this.words, HEAD)) >>> 0;
  }

  /**
   * Hands the ring's bytes, oldest first, to `take` (in at most two views, which are valid only
   * during the call) and frees them; returns how many. The notify flag is cleared first, so a
   * byte appended after the tail is read here signals the eventfd again.
   */
  drain(take: (bytes: Uint8Array) => void): number {
    Atomics.store(this.words, NOTIFY, 0);
    const head = Atomics.load(this.words, HEAD);
    const tail = Atomics.load(this.words, TAIL);
    const count = (tail - head) >>> 0;
    if (count === 0) return 0;
    if (count > FAST_PIO_RING_SIZE) {
      // Not a state C leaves; start over rather than read garbage.
      Atomics.store(this.words, HEAD, tail);
      return 0;
    }
    const from = head % FAST_PIO_RING_SIZE;
    const first = Math.min(count, FAST_PIO_RING_SIZE - from);
    try {
      take(this.ring.subarray(from, from + first));
      if (first < count) take(this.ring.subarray(0, count - first));
    } finally {
      Atomics.store(this.words, HEAD, tail);
    }
    return count;
  }
}
