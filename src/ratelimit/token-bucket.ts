/**
 * One token bucket: `size` tokens refilled continuously over `refillTimeMs`, capped at `size`,
 * plus a one-time burst spent first and never refilled. Pure: the caller passes the time, so the
 * limiter reads its clock once per request and tests need no clock at all.
 *
 * The budget is kept in "scaled" units of 1 token = refill_ns units, so that one nanosecond adds
 * exactly `size` units: refill is exact whatever the numbers, with no rounding drift between
 * many small refills and one large one (Firecracker's integer division loses the remainder).
 */
import { NS_PER_MS } from './clock';

export type Reduction =
  | { kind: 'ok' }
  /** The request did not fit; nothing was taken. `waitNs` until it would. */
  | { kind: 'short'; waitNs: bigint }
  /** A request larger than `size` went through; the bucket is in debt for `debtNs` of refill. */
  | { kind: 'overdrawn'; debtNs: bigint };

/** What a snapshot keeps of a bucket: its level and burst, not the clock (time stops while saved). */
export interface TokenBucketState {
  size: number;
  refillTimeMs: number;
  /** Scaled units (see the class comment); negative while in debt. */
  scaled: bigint;
  burst: number;
}

export class TokenBucket {
  readonly size: number;
  readonly initialBurst: number;
  readonly refillTimeMs: number;
  private burst: number;
  private readonly sizeB: bigint;
  private readonly refillNs: bigint;
  private readonly capacity: bigint;
  /** Scaled; negative while repaying an over-size request. */
  private scaled: bigint;
  private lastNs: bigint;

  /** Starts full. `size` and `refillTimeMs` must be > 0: a zero means "no bucket" one level up. */
  constructor(size: number, oneTimeBurst: number, refillTimeMs: number, nowNs: bigint) {
    if (!(size > 0 && refillTimeMs > 0)) throw new RangeError('A token bucket needs size > 0 and refill time > 0.');
    this.size = size;
    this.initialBurst = oneTimeBurst;
    this.refillTimeMs = refillTimeMs;
    this.burst = oneTimeBurst;
    this.sizeB = BigInt(size);
    this.refillNs = BigInt(refillTimeMs) * NS_PER_MS;
    this.capacity = this.sizeB * this.refillNs;
    this.scaled = this.capacity;
    this.lastNs = nowNs;
  }

  /** Regular tokens available now, rounded down (negative while in debt). */
  budget(nowNs: bigint): number {
    this.refill(nowNs);
    const q = this.scaled / this.refillNs;
    // bigint division truncates toward zero; a debt of half a token is still a debt.
    return Number(this.scaled < 0n && q * this.refillNs !== this.scaled ? q - 1n : q);
  }

  /** One-time burst tokens left. */
  get oneTimeBurst(): number {
    return this.burst;
  }

  /**
   * Takes `tokens`, burst first, all or nothing. While any burst is left the budget is full
   * (the budget is only drawn once the burst is gone, and replenish refills the budget before
   * the burst), which is what "refill starts after the burst is spent" means.
   * A request whose regular part exceeds `size` can never fit, so it goes through at once and
   * leaves the bucket negative: the limiter blocks until the debt is repaid by refill.
   */
  reduce(tokens: number, nowNs: bigint): Reduction {
    this.refill(nowNs);
    const fromBurst = Math.min(this.burst, tokens);
    const rest = tokens - fromBurst;
    const need = BigInt(rest) * this.refillNs;
    if (need <= this.scaled) {
      this.burst -= fromBurst;
      this.scaled -= need;
      return { kind: 'ok' };
    }
    if (rest > this.size) {
      this.burst -= fromBurst;
      this.scaled -= need;
      return { kind: 'overdrawn', debtNs: this.nsUntil(0n) };
    }
    return { kind: 'short', waitNs: this.nsUntil(need) };
  }

  /**
   * Gives back tokens a request took but could not use: to the regular budget first (up to
   * `size`), the rest to the burst (up to its initial value), undoing reduce's order so a
   * consume then replenish of the same count restores both exactly.
   */
  replenish(tokens: number, nowNs: bigint): void {
    this.refill(nowNs);
    const room = this.capacity - this.scaled;
    const add = BigInt(tokens) * this.refillNs;
    if (add <= room) {
      this.scaled += add;
      return;
    }
    this.scaled = this.capacity;
    const left = Number((add - room) / this.refillNs);
    this.burst = Math.min(this.initialBurst, this.burst + left);
  }

  /** The level and burst as of `nowNs`, for a snapshot. */
  saveState(nowNs: bigint): TokenBucketState {
    this.refill(nowNs);
    return { size: this.size, refillTimeMs: this.refillTimeMs, scaled: this.scaled, burst: this.burst };
  }

  /**
   * Takes a saved level back, counting refill from `nowNs` (a restored VM resumes where it
   * stopped). False, changing nothing, when the state is of a bucket with other limits.
   */
  restoreState(s: TokenBucketState, nowNs: bigint): boolean {
    if (s.size !== this.size || s.refillTimeMs !== this.refillTimeMs || typeof s.scaled !== 'bigint' || !Number.isInteger(s.burst)) return false;
    this.scaled = s.scaled > this.capacity ? this.capacity : s.scaled;
    this.burst = Math.max(0, Math.min(this.initialBurst, s.burst));
    this.lastNs = nowNs;
    return true;
  }

  /** Nanoseconds until the scaled budget reaches `target`, rounded up. */
  private nsUntil(target: bigint): bigint {
    const missing = target - this.scaled;
    return missing <= 0n ? 0n : (missing + this.sizeB - 1n) / this.sizeB;
  }

  private refill(nowNs: bigint): void {
    const elapsed = nowNs - this.lastNs;
    if (elapsed <= 0n) return;
    this.lastNs = nowNs;
    const next = this.scaled + elapsed * this.sizeB;
    this.scaled = next > this.capacity ? this.capacity : next;
  }
}
