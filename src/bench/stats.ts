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
