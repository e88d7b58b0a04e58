/**
 * The queue loop block and rng share: take requests in order and run each one the rate limiter
 * admits; the first one it refuses is held and tried first when the limiter's timer fires, so
 * requests still start in the order the driver queued them.
 */
import type { RateLimiter } from '../../ratelimit/rate-limiter';

/** One op and `bytes`, or nothing: the op is given back when the bytes do not fit (Firecracker's order). */
export function admitRequest(limiter: RateLimiter, bytes: number): boolean {
  if (!limiter.consume(1, 'ops')) return false;
  if (bytes > 0 && !limiter.consume(bytes, 'bytes')) {
    limiter.manualReplenish(1, 'ops');
    return false;
  }
  return true;
}

export interface LimitedDrainHooks<T> {
  /** The next request from the queue, or undefined when it is empty (malformed chains are completed and skipped here). */
  next(): T | undefined;
  /** Its cost in bytes for the limiter's bandwidth bucket. */
  bytes(request: T): number;
  run(request: T): void;
  /** The limiter refused a request (held until it unblocks). */
  throttled(): void;
}

export class LimitedDrain<T> {
  private held: T | undefined;

  constructor(private readonly limiter: RateLimiter, private readonly hooks: LimitedDrainHooks<T>) {}

  /** True while a refused request waits for the limiter: the queue is not read until it goes. */
  get blocked(): boolean {
    return this.held !== undefined && this.limiter.blocked;
  }

  /** A popped request is held (for a snapshot: popped again after a restore). */
  get holding(): boolean {
    return this.held !== undefined;
  }

  /** Runs requests until the queue is empty or the limiter refuses one. */
  drain(): void {
    if (this.blocked) return;
    for (;;) {
      const request = this.held ?? this.hooks.next();
      this.held = undefined;
      if (request === undefined) return;
      if (!admitRequest(this.limiter, this.hooks.bytes(request))) {
        this.held = request;
        this.hooks.throttled();
        return;
      }
      this.hooks.run(request);
    }
  }

  /** Forgets the held request (the driver reset the device). */
  clear(): void {
    this.held = undefined;
  }
}
