/**
 * Work a VMM does while nobody is waiting on it: it runs once, after `quietMs` in which no API
 * request arrived (each request pokes). A client that configures and starts a VM right away is
 * never made to wait behind it; a VMM left idle (a warm pool's) does it soon after it listens.
 */
import type { TimerHandle, Timers } from '../ratelimit/clock';

export interface QuietWork {
  /** A request arrived: wait another quietMs. */
  poke(): void;
  cancel(): void;
}

/**
 * `timers` default to the project's unref'd Node timers (never what keeps the process alive),
 * loaded on the first call: after the API socket listens, not on the way to it.
 */
export function whenQuiet(quietMs: number, work: () => void, timers: Timers = (require('../ratelimit/clock') as typeof import('../ratelimit/clock')).nodeTimers): QuietWork {
  let done = false;
  let timer: TimerHandle | undefined;
  const disarm = () => {
    if (timer !== undefined) timers.clearTimeout(timer);
    timer = undefined;
  };
  const arm = () => {
    if (done) return;
    disarm();
    timer = timers.setTimeout(() => {
      done = true;
      timer = undefined;
      work();
    }, quietMs);
  };
  arm();
  return {
    poke: arm,
    cancel: () => {
      done = true;
      disarm();
    },
  };
}
