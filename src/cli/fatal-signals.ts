/**
 * Firecracker's signal handling (behaviours.md section 12): SIGBUS, SIGSEGV, SIGXFSZ, SIGXCPU,
 * SIGHUP and SIGILL log "Shutting down VM after intercepting signal N", count in metrics
 * `signals`, flush the metrics and exit with 149/150/151/154/156/157; SIGPIPE is logged,
 * counted and survived. The `seccomp` group's num_faults stays 0 in a running process: a bad
 * system call ends it in the native SIGSYS handler (exit 148) before JavaScript could count it.
 * Signals sent with kill() reach these handlers; a real fault in native code is not recoverable
 * from JavaScript and ends the process as the kernel decides.
 */
import { logger } from '../logger/logger';
import { metrics } from '../metrics/metrics';

export const FATAL_SIGNALS = {
  SIGBUS: { number: 7, exit: 149, counter: 'sigbus' },
  SIGSEGV: { number: 11, exit: 150, counter: 'sigsegv' },
  SIGXFSZ: { number: 25, exit: 151, counter: 'sigxfsz' },
  SIGXCPU: { number: 24, exit: 154, counter: 'sigxcpu' },
  SIGHUP: { number: 1, exit: 156, counter: 'sighup' },
  SIGILL: { number: 4, exit: 157, counter: 'sigill' },
} as const;

export type FatalSignal = keyof typeof FATAL_SIGNALS;

/** Installs the handlers and registers the `signals` and `seccomp` metric groups. */
export function installFatalSignalHandlers(exit: (code: number) => void = (code) => process.exit(code)): void {
  const counts: Record<string, number> = { sigbus: 0, sigsegv: 0, sigxfsz: 0, sigxcpu: 0, sighup: 0, sigill: 0, sigpipe: 0 };
  metrics.register('signals', () => ({ ...counts }));
  metrics.register('seccomp', () => ({ num_faults: 0 }));
  for (const [name, s] of Object.entries(FATAL_SIGNALS)) {
    process.on(name as NodeJS.Signals, () => {
      counts[s.counter]++;
      logger.error(`Shutting down VM after intercepting signal ${s.number}, code 0.`);
      try {
        metrics.flush();
      } catch {
        // the exit matters more than the last metrics line
      }
      exit(s.exit);
    });
  }
  process.on('SIGPIPE', () => {
    counts.sigpipe++;
    logger.error('Received signal 13');
  });
}
