/**
 * Metrics: one JSON object per line written to the metrics path (a file or named pipe), at
 * InstanceStart, every 60 s, on FlushMetrics and on exit. Counters are deltas since the previous
 * line, so a reader can sum lines; each line also says when it was written (utc_timestamp_ms).
 * Sources register a sampler that returns cumulative counters; the store keeps the last sample
 * of each and writes the difference.
 */
import * as fs from 'node:fs';
import { SparklerError } from '../errors';
import { ApiMetrics } from './api-metrics';
import { conformLine } from './conform';

export type CounterGroup = Record<string, number>;
/** Returns cumulative counters; called at every flush. */
export type Sampler = () => CounterGroup;

export const FLUSH_INTERVAL_MS = 60_000;

export class MetricsError extends SparklerError {
  constructor(message: string, cause?: unknown) {
    super('EMETRICS', message, { cause });
    this.name = 'MetricsError';
  }
}

export class Metrics {
  readonly api = new ApiMetrics();
  private fd?: number;
  private path?: string;
  private timer?: NodeJS.Timeout;
  private readonly samplers = new Map<string, { sample: Sampler; gauges: ReadonlySet<string> }>();
  private readonly last = new Map<string, CounterGroup>();
  /** Lines written, for tests and for the exit flush to know whether it matters. */
  linesWritten = 0;

  get configured(): boolean {
    return this.fd !== undefined;
  }

  /** Opens the target once; Firecracker refuses a second initialisation, and so do we. */
  init(path: string): void {
    if (this.fd !== undefined) throw new MetricsError(`Reinitialization of metrics not allowed: metrics already go to ${this.path}.`);
    try {
      this.fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NONBLOCK, 0o644);
    } catch (err) {
      throw new MetricsError(`Cannot open the metrics file ${path}: ${(err as Error).message}.`, err);
    }
    this.path = path;
  }

  /**
   * Adds a source of counters under `group` (replacing one of the same name). `gauges` name the
   * values that are levels (requests in flight), written as they are rather than as differences.
   */
  register(group: string, sampler: Sampler, gauges: readonly string[] = []): void {
    this.samplers.set(group, { sample: sampler, gauges: new Set(gauges) });
  }

  /** Starts the periodic flush; the timer does not keep the process alive. */
  startPeriodicFlush(intervalMs = FLUSH_INTERVAL_MS): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.flush(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The next line's content: deltas of every group since the previous flush. */
  snapshot(): Record<string, unknown> {
    const line: Record<string, unknown> = { utc_timestamp_ms: Date.now() };
    Object.assign(line, this.api.takeDeltas());
    for (const [group, { sample, gauges }] of this.samplers) {
      let now: CounterGroup;
      try {
        now = sample();
      } catch {
        continue; // a source that fails must not stop the others from being reported
      }
      const prev = this.last.get(group) ?? {};
      const delta: CounterGroup = {};
      for (const [k, v] of Object.entries(now)) delta[k] = gauges.has(k) ? v : v - (prev[k] ?? 0);
      this.last.set(group, now);
      line[group] = nestDottedKeys(delta);
    }
    return line;
  }

  /**
   * The next line as written: the deltas shaped to Firecracker's strict schema (every group and
   * field it defines, zeros where there is no source, none of Sparkler's own extras).
   */
  line(): Record<string, unknown> {
    return conformLine(this.snapshot());
  }

  /** Writes one line; returns false when no metrics path is configured (nothing to do). */
  flush(): boolean {
    if (this.fd === undefined) return false;
    const text = `${JSON.stringify(this.line())}\n`;
    try {
      fs.writeSync(this.fd, text);
      this.linesWritten++;
    } catch (err) {
      // A pipe nobody reads (EAGAIN) loses this line, never the VMM.
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw new MetricsError(`Cannot write metrics to ${this.path}: ${(err as Error).message}.`, err);
    }
    return true;
  }
}

/**
 * `a.b` counters become `{ a: { b } }`: how a group writes Firecracker's latency aggregates
 * (`tap_write_agg: { min_us, max_us, sum_us }`) while its sampler returns flat numbers.
 */
function nestDottedKeys(group: CounterGroup): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(group)) {
    const dot = k.indexOf('.');
    if (dot < 0) out[k] = v;
    else ((out[k.slice(0, dot)] ??= {}) as Record<string, number>)[k.slice(dot + 1)] = v;
  }
  return out;
}

/** The process-wide metrics (one process runs one microVM). */
export const metrics = new Metrics();
