/** What the soak reads about a VMM process from /proc, and percentile arithmetic. */
import * as fs from 'node:fs';

export interface ProcessSample {
  rssKiB: number;
  /** Private_Clean + Private_Dirty: memory only this process holds (guest RAM it touched included). */
  privateKiB: number;
  fds: number;
  threads: number;
}

const field = (text: string, name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? -1);

export function sampleProcess(pid: number): ProcessSample | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const rollup = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    return {
      rssKiB: field(status, 'VmRSS'),
      privateKiB: field(rollup, 'Private_Clean') + field(rollup, 'Private_Dirty'),
      fds: fs.readdirSync(`/proc/${pid}/fd`).length,
      threads: field(status, 'Threads'),
    };
  } catch {
    return undefined; // the process is gone
  }
}

/** The q-th percentile (0..100) of `values`, nearest rank; NaN for none. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((q / 100) * sorted.length) - 1))];
}

/** Bounded reservoir of latencies: keeps every value up to `cap`, then a uniform sample. */
export class Reservoir {
  readonly values: number[] = [];
  count = 0;
  max = 0;
  constructor(private readonly cap = 50_000) {}
  add(v: number): void {
    this.count++;
    this.max = Math.max(this.max, v);
    if (this.values.length < this.cap) this.values.push(v);
    else {
      const i = Math.floor(Math.random() * this.count);
      if (i < this.cap) this.values[i] = v;
    }
  }
  summary(): { count: number; p50: number; p99: number; p999: number; max: number } {
    const r = (x: number) => Math.round(x * 100) / 100;
    return { count: this.count, p50: r(percentile(this.values, 50)), p99: r(percentile(this.values, 99)), p999: r(percentile(this.values, 99.9)), max: r(this.max) };
  }
}
