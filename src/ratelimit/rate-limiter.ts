/**
 * A device's rate limiter (Firecracker's RateLimiter): an optional bandwidth bucket (bytes) and
 * an optional ops bucket. When a request does not fit, the limiter blocks: every consume fails
 * until a timer, armed for the moment the tokens will be there, unblocks it and calls
 * `onUnblocked` so the device resumes its queue. Blocking the whole limiter, not one bucket,
 * keeps a device's requests in order: a small request may not overtake the throttled one.
 *
 * A device always owns a RateLimiter, with no buckets when none is configured, so a PATCH can
 * add limits later.
 */
import type { RateLimiterConfig, TokenBucketConfig } from '../config/rate-limiter';
import { isUnlimitedBucket } from '../config/rate-limiter';
import type { Clock, TimerHandle, Timers } from './clock';
import { monotonicClock, nodeTimers, nsToTimerMs } from './clock';
import { TokenBucket, TokenBucketState } from './token-bucket';

/** A limiter's buckets for a snapshot (a pending timer is not kept: the held request asks again). */
export interface RateLimiterState {
  bandwidth?: TokenBucketState;
  ops?: TokenBucketState;
}

export type TokenType = 'bytes' | 'ops';

/** Firecracker's BucketUpdate: None = keep, Disabled = remove, Update = replace. */
export type BucketUpdate =
  | { kind: 'keep' }
  | { kind: 'disable' }
  | { kind: 'replace'; bucket: TokenBucketConfig };

/**
 * What an update's JSON means for one bucket: absent or null keeps the current bucket; a bucket
 * with size 0 or refill_time 0 removes the limit; any other bucket replaces the current one.
 */
export function bucketUpdateOf(bucket: TokenBucketConfig | undefined): BucketUpdate {
  if (bucket === undefined) return { kind: 'keep' };
  return isUnlimitedBucket(bucket) ? { kind: 'disable' } : { kind: 'replace', bucket };
}

export interface RateLimiterOptions {
  clock?: Clock;
  timers?: Timers;
  onUnblocked?: () => void;
}

export class RateLimiter {
  /** Called once each time the limiter unblocks; the device retries its queue. */
  onUnblocked: (() => void) | undefined;
  /** Consumes refused (not enough tokens, or already blocked). */
  throttledEvents = 0;
  /** Requests larger than a bucket let through into debt. */
  overdraftEvents = 0;
  /** Times the timer fired and the limiter unblocked. */
  unblockEvents = 0;

  private bandwidth: TokenBucket | undefined;
  private ops: TokenBucket | undefined;
  private timer: TimerHandle | undefined;
  private readonly clock: Clock;
  private readonly timers: Timers;

  constructor(config: RateLimiterConfig = {}, options: RateLimiterOptions = {}) {
    this.clock = options.clock ?? monotonicClock;
    this.timers = options.timers ?? nodeTimers;
    this.onUnblocked = options.onUnblocked;
    this.bandwidth = this.makeBucket(config.bandwidth);
    this.ops = this.makeBucket(config.ops);
  }

  get blocked(): boolean {
    return this.timer !== undefined;
  }

  /** True when neither bucket limits anything. */
  get unlimited(): boolean {
    return this.bandwidth === undefined && this.ops === undefined;
  }

  /**
   * Takes `tokens` of `type`. True: go ahead. False: the limiter is blocked; stop the queue and
   * wait for `onUnblocked`. A type with no bucket always succeeds unless the limiter is blocked.
   */
  consume(tokens: number, type: TokenType): boolean {
    if (this.timer !== undefined) {
      this.throttledEvents++;
      return false;
    }
    const bucket = type === 'bytes' ? this.bandwidth : this.ops;
    if (!bucket) return true;
    const r = bucket.reduce(tokens, this.clock.nowNs());
    switch (r.kind) {
      case 'ok':
        return true;
      case 'overdrawn':
        this.overdraftEvents++;
        this.arm(nsToTimerMs(r.debtNs));
        return true;
      case 'short':
        this.throttledEvents++;
        this.arm(nsToTimerMs(r.waitNs));
        return false;
    }
  }

  /**
   * Gives back tokens taken by a request that could not complete. It does not unblock: the
   * armed timer still fires and the device retries then.
   */
  manualReplenish(tokens: number, type: TokenType): void {
    const bucket = type === 'bytes' ? this.bandwidth : this.ops;
    bucket?.replenish(tokens, this.clock.nowNs());
  }

  /** Regular tokens available now for `type` (undefined: no limit on it). */
  budget(type: TokenType): number | undefined {
    return (type === 'bytes' ? this.bandwidth : this.ops)?.budget(this.clock.nowNs());
  }

  /** One-time burst left for `type` (undefined: no limit on it). */
  oneTimeBurst(type: TokenType): number | undefined {
    return (type === 'bytes' ? this.bandwidth : this.ops)?.oneTimeBurst;
  }

  /**
   * Applies a PATCH (see bucketUpdateOf). A replaced bucket starts full with its burst, as in
   * Firecracker. If the limiter was blocked, the wait computed under the old limits no longer
   * means anything, so it unblocks on the next timer turn and the device retries against the
   * new buckets (blocking again if they still say no).
   */
  update(patch: RateLimiterConfig): void {
    this.applyUpdate(bucketUpdateOf(patch.bandwidth), bucketUpdateOf(patch.ops));
  }

  applyUpdate(bandwidth: BucketUpdate, ops: BucketUpdate): void {
    this.bandwidth = this.updated(this.bandwidth, bandwidth);
    this.ops = this.updated(this.ops, ops);
    const changed = bandwidth.kind !== 'keep' || ops.kind !== 'keep';
    if (changed && this.timer !== undefined) {
      this.timers.clearTimeout(this.timer);
      this.timer = undefined;
      this.arm(0);
    }
  }

  /** The configuration as given (initial burst, not what is left), for GET /vm/config. */
  toConfig(): RateLimiterConfig {
    const config: RateLimiterConfig = {};
    if (this.bandwidth) config.bandwidth = bucketConfig(this.bandwidth);
    if (this.ops) config.ops = bucketConfig(this.ops);
    return config;
  }

  saveState(): RateLimiterState {
    const now = this.clock.nowNs();
    return { bandwidth: this.bandwidth?.saveState(now), ops: this.ops?.saveState(now) };
  }

  /**
   * Puts saved bucket levels back on the buckets of a restored device (made from the same
   * configuration). A bucket whose limits differ from the saved one's keeps starting full.
   */
  restoreState(s: RateLimiterState | undefined): void {
    const now = this.clock.nowNs();
    if (s?.bandwidth !== undefined) this.bandwidth?.restoreState(s.bandwidth, now);
    if (s?.ops !== undefined) this.ops?.restoreState(s.ops, now);
  }

  /** Cancels a pending timer (device teardown); onUnblocked will not be called. */
  dispose(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(delayMs: number): void {
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      this.unblockEvents++;
      this.onUnblocked?.();
    }, delayMs);
  }

  private updated(current: TokenBucket | undefined, u: BucketUpdate): TokenBucket | undefined {
    if (u.kind === 'keep') return current;
    if (u.kind === 'disable') return undefined;
    return this.makeBucket(u.bucket);
  }

  private makeBucket(b: TokenBucketConfig | undefined): TokenBucket | undefined {
    if (b === undefined || isUnlimitedBucket(b)) return undefined;
    return new TokenBucket(b.size, b.oneTimeBurst, b.refillTimeMs, this.clock.nowNs());
  }
}

function bucketConfig(b: TokenBucket): TokenBucketConfig {
  return { size: b.size, oneTimeBurst: b.initialBurst, refillTimeMs: b.refillTimeMs };
}
