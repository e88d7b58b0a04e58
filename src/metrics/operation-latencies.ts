/**
 * Firecracker's `latencies_us` group: the duration of the latest pause, resume, snapshot
 * creation (Full or Diff) and snapshot load, in microseconds. They are levels, not counters, so
 * each line repeats the latest value. Firecracker splits each into the API's view (`pause_vm`)
 * and the VMM thread's (`vmm_pause_vm`); in Sparkler one thread does both, so both carry the
 * same measurement.
 */
import type { Metrics } from './metrics';

export type TimedOperation = 'full_create_snapshot' | 'diff_create_snapshot' | 'load_snapshot' | 'pause_vm' | 'resume_vm';
const OPERATIONS: readonly TimedOperation[] = ['full_create_snapshot', 'diff_create_snapshot', 'load_snapshot', 'pause_vm', 'resume_vm'];

export class OperationLatencies {
  private readonly latest = new Map<TimedOperation, number>();

  /** Runs `op`, recording its duration under `name` when it succeeds. */
  async time<T>(name: TimedOperation, op: () => T | Promise<T>): Promise<T> {
    const t0 = performance.now();
    const result = await op();
    this.latest.set(name, Math.round((performance.now() - t0) * 1000));
    return result;
  }

  sample(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const name of OPERATIONS) {
      const us = this.latest.get(name) ?? 0;
      out[name] = us;
      out[`vmm_${name}`] = us;
    }
    return out;
  }

  register(metrics: Metrics): void {
    const sample = () => this.sample();
    metrics.register('latencies_us', sample, Object.keys(sample()));
  }
}
