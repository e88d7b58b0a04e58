/**
 * Time for rate limiters, injectable so tests drive it by hand. Nanoseconds as bigint: the
 * limiter's arithmetic is exact integer arithmetic, and a Number of nanoseconds since boot
 * would stop being exact after 104 days of host uptime.
 */

export interface Clock {
  /** Monotonic time in nanoseconds (any origin). */
  nowNs(): bigint;
}

export type TimerHandle = unknown;

export interface Timers {
  setTimeout(callback: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const monotonicClock: Clock = { nowNs: () => process.hrtime.bigint() };

/** What nodeTimers.setTimeout returns: the Node timer currently armed for the deadline. */
export interface NodeTimerHandle {
  timeout: NodeJS.Timeout;
}

/**
 * Node timers, unref'd: a throttled device waiting for tokens must not keep a stopping VMM
 * (or a test run) alive; the API socket and vCPU threads are what keep the process up.
 * libuv counts timers in whole milliseconds of its loop time, so a Node timer can fire up to a
 * millisecond early when the loop is awake anyway, and the tokens are not there yet. The
 * deadline is kept on the monotonic clock and an early firing waits out the rest.
 */
export const nodeTimers: Timers = {
  setTimeout(callback, delayMs): NodeTimerHandle {
    const deadlineNs = monotonicClock.nowNs() + BigInt(Math.ceil(delayMs)) * NS_PER_MS;
    const fire = (): void => {
      const leftNs = deadlineNs - monotonicClock.nowNs();
      if (leftNs <= 0n) return callback();
      handle.timeout = setTimeout(fire, nsToTimerMs(leftNs)).unref();
    };
    const handle: NodeTimerHandle = { timeout: setTimeout(fire, delayMs).unref() };
    return handle;
  },
  clearTimeout(handle) {
    clearTimeout((handle as NodeTimerHandle).timeout);
  },
};

export const NS_PER_MS = 1_000_000n;

/** Whole milliseconds, rounded up so a timer never fires before the tokens are there. */
export function nsToTimerMs(ns: bigint): number {
  if (ns <= 0n) return 0;
  return Number((ns + NS_PER_MS - 1n) / NS_PER_MS);
}
