/**
 * Summaries of repeated measurements: every figure the benchmarks report is a median over runs,
 * with the minimum and maximum beside it, and every comparison is a ratio of medians taken in
 * the same run.
 */

export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number;
}

/** Median, min and max of the samples; null when there are none (the measurement could not run). */
export function summarize(samples: readonly number[]): Summary | null {
  const xs = samples.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const mid = xs.length >> 1;
  const median = xs.length % 2 === 1 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
  return { median: round(median), min: round(xs[0]), max: round(xs[xs.length - 1]), runs: xs.length };
}

/** a / b of two summaries' medians, or null when either is missing or b is zero. */
export function ratio(a: Summary | null, b: Summary | null): number | null {
  if (!a || !b || b.median === 0) return null;
  return round(a.median / b.median, 3);
}

/** Rounds to a few significant decimals so the JSON stays readable (3 by default). */
export function round(x: number, decimals = 3): number {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
}

/**
 * A paired comparison: per-pair ratios a[i] / b[i] of measurements taken back to back (ABBA
 * order), so that the slow drift of a shared or emulated host cancels within each pair.
 */
export interface PairedRatio {
  /** Median of the per-pair ratios. */
  median: number;
  /** 95% percentile-bootstrap interval of that median; null for a single pair (no interval). */
  ci95: [number, number] | null;
  /** The spread of the per-pair ratios: min, interquartile range, max. */
  spread: { min: number; q1: number; q3: number; max: number };
  pairs: number;
}

/** A small deterministic PRNG (mulberry32): a bootstrap that gives the same interval for the same data. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The q-quantile (0..1) of sorted values, linear between order statistics. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}

const medianOf = (xs: number[]): number => quantile([...xs].sort((a, b) => a - b), 0.5);

/**
 * Percentile-bootstrap interval of the median: resamples the values with replacement
 * `iterations` times and takes the (1-level)/2 and (1+level)/2 quantiles of the resampled
 * medians. Null for fewer than 2 values (no interval to speak of).
 */
export function bootstrapMedianInterval(
  values: readonly number[], opts: { iterations?: number; level?: number; random?: () => number } = {},
): [number, number] | null {
  const xs = values.filter(Number.isFinite);
  if (xs.length < 2) return null;
  const iterations = opts.iterations ?? 4000;
  const level = opts.level ?? 0.95;
  const random = opts.random ?? seededRandom(0x5eed);
  const medians = new Array<number>(iterations);
  const sample = new Array<number>(xs.length);
  for (let i = 0; i < iterations; i++) {
    for (let j = 0; j < xs.length; j++) sample[j] = xs[Math.floor(random() * xs.length)];
    medians[i] = medianOf(sample);
  }
  medians.sort((a, b) => a - b);
  return [quantile(medians, (1 - level) / 2), quantile(medians, (1 + level) / 2)];
}

/**
 * The paired difference a[i] - b[i] of two equally long sample lists (e.g. Sparkler's start-up
 * over Node's floor measured in the same round), summarised like pairedRatio; null with no pair.
 */
export function pairedDifference(a: readonly (number | undefined)[], b: readonly (number | undefined)[]): PairedRatio | null {
  const diffs: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x !== undefined && y !== undefined && Number.isFinite(x) && Number.isFinite(y)) diffs.push(x - y);
  }
  return summarisePaired(diffs);
}

function summarisePaired(values: number[]): PairedRatio | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((p, q) => p - q);
  const ci = bootstrapMedianInterval(values);
  return {
    median: round(quantile(sorted, 0.5)),
    ci95: ci ? [round(ci[0]), round(ci[1])] : null,
    spread: { min: round(sorted[0]), q1: round(quantile(sorted, 0.25)), q3: round(quantile(sorted, 0.75)), max: round(sorted[sorted.length - 1]) },
    pairs: values.length,
  };
}

/**
 * The paired ratio of two equally long sample lists (a[i] and b[i] one pair; a pair with a
 * missing or non-positive side is left out); null when no pair is complete.
 */
export function pairedRatio(a: readonly (number | undefined)[], b: readonly (number | undefined)[]): PairedRatio | null {
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x !== undefined && y !== undefined && Number.isFinite(x) && Number.isFinite(y) && x > 0 && y > 0) ratios.push(x / y);
  }
  return summarisePaired(ratios);
}
