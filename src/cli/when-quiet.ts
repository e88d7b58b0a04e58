/**
 * Work a VMM does while nobody is waiting on it: it runs once, after `quietMs` in which no API
 * request arrived (each request pokes). A client that configures and starts a VM right away is
 * never made to wait behind it; a VMM left idle (a warm pool's) does it soon after it listens.
 */
export interface QuietWork {
  /** A request arrived: wait another quietMs. */
  poke(): void;
  cancel(): void;
}

type Timers = { set: (fn: () => void, ms: number) => { unref?: () => unknown }; clear: (t: ReturnType<Timers['set']>) => void };
const realTimers: Timers = { set: (fn, ms) => setTimeout(fn, ms), clear: (t) => clearTimeout(t as NodeJS.Timeout) };

export function whenQuiet(quietMs: number, work: () => void, timers: Timers = realTimers): QuietWork {
  let done = false;
  let timer: ReturnType<Timers['set']> | undefined;
  const arm = () => {
    if (done) return;
    if (timer) timers.clear(timer);
    timer = timers.set(() => {
      done = true;
      timer = undefined;
      work();
    }, quietMs);
    timer.unref?.(); // never what keeps the process alive
  };
  arm();
  return {
    poke: arm,
    cancel: () => {
      done = true;
      if (timer) timers.clear(timer);
      timer = undefined;
    },
  };
}
