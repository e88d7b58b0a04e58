/**
 * The result format (bench/results/latest.json) and the markdown report beside it.
 * latest.json is an array of entries; the five headline names of issue 5 (boot_to_init_ms,
 * vmm_private_mib, api_ready_ms, create_per_core_s, exit_roundtrip_us) come first and appear
 * once each; the other entries are the details and variants behind them, with unique names.
 */
import { PairedRatio, ratio, round, Summary, summarize } from './stats';

export interface BenchEntry {
  name: string;
  unit: string;
  sparkler: Summary | null;
  qemu: Summary | null;
  /** sparkler.median / qemu.median (or / floor.median when `against` is 'c_floor'). */
  ratio: number | null;
  /** What the ratio is taken against. */
  against: 'qemu' | 'c_floor';
  /** The C floor (exit round trip only). */
  floor?: Summary | null;
  /** true for the five names the issue asks for. */
  headline: boolean;
  /** Lower is better (times, memory) or higher is better (rates). */
  better: 'lower' | 'higher';
  /** Where it ran: the emulated KVM host or this machine's /dev/kvm. */
  where: string;
  /** The configuration in words (console, vCPUs, span, guest). */
  variant: string;
  note?: string;
  samples: { sparkler: number[]; qemu: number[]; floor?: number[] };
  /**
   * Paired entries (bench/paired.ts): the median of per-pair ratios with its 95% bootstrap
   * interval and spread (then `ratio` is that median, and sparkler/qemu keep the per-VMM
   * medians beside it), and how often the emulated host stalled during the run.
   */
  paired?: PairedRatio & { emuhostStalls: number };
}

export const HEADLINES = ['boot_to_init_ms', 'vmm_private_mib', 'api_ready_ms', 'create_per_core_s', 'exit_roundtrip_us'] as const;

export interface EntrySpec {
  name: string;
  unit: string;
  sparkler: number[];
  qemu?: number[];
  floor?: number[];
  better?: 'lower' | 'higher';
  where: string;
  variant: string;
  note?: string;
  paired?: PairedRatio & { emuhostStalls: number };
}

export function makeEntry(spec: EntrySpec): BenchEntry {
  const s = summarize(spec.sparkler);
  const q = spec.qemu ? summarize(spec.qemu) : null;
  const f = spec.floor ? summarize(spec.floor) : undefined;
  const roundAll = (xs: number[] | undefined): number[] => (xs ?? []).filter(Number.isFinite).map((x) => round(x));
  const entry: BenchEntry = {
    name: spec.name,
    unit: spec.unit,
    sparkler: s,
    qemu: q,
    ratio: f !== undefined ? ratio(s, f) : ratio(s, q),
    against: f !== undefined ? 'c_floor' : 'qemu',
    headline: (HEADLINES as readonly string[]).includes(spec.name),
    better: spec.better ?? 'lower',
    where: spec.where,
    variant: spec.variant,
    samples: { sparkler: roundAll(spec.sparkler), qemu: roundAll(spec.qemu) },
  };
  if (f !== undefined) {
    entry.floor = f;
    entry.samples.floor = roundAll(spec.floor);
  }
  if (spec.note) entry.note = spec.note;
  if (spec.paired) {
    entry.paired = spec.paired;
    entry.ratio = spec.paired.median;
  }
  return entry;
}

/** Headlines first, in the issue's order; then the rest in the order the suites produced them. */
export function orderEntries(entries: BenchEntry[]): BenchEntry[] {
  const head = HEADLINES.map((n) => entries.find((e) => e.name === n)).filter((e): e is BenchEntry => e !== undefined);
  return [...head, ...entries.filter((e) => !head.includes(e))];
}

export interface RunInfo {
  date: string;
  mode: 'quick' | 'full';
  durationS: number;
  host: string;
  kvm: string;
  cpus: number;
  loadBefore: number[];
  loadAfter: number[];
  node: string;
  qemu: string | null;
  kernel: string;
  problems: string[];
  /** The checkout's commit (git rev-parse --short HEAD), for the history tables; absent outside git. */
  commit?: string;
}

const fmt = (x: number): string => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2));
/** The ratio, and for a paired entry its 95% interval, pairs and spread. */
export const ratioCell = (e: BenchEntry): string => {
  if (e.ratio === null) return '—';
  if (!e.paired) return `${e.ratio.toFixed(2)}x`;
  const p = e.paired;
  const ci = p.ci95 ? `[${p.ci95[0].toFixed(3)}, ${p.ci95[1].toFixed(3)}]` : '(no interval: one pair)';
  return `**${p.median.toFixed(3)}x** ${ci} (${p.pairs} pairs; ratios ${p.spread.min.toFixed(2)}–${p.spread.max.toFixed(2)}, IQR ${p.spread.q1.toFixed(2)}–${p.spread.q3.toFixed(2)}${p.emuhostStalls > 0 ? `; emulated host stalled ${p.emuhostStalls}x` : ''})`;
};
const cell = (s: Summary | null | undefined): string => (s ? `**${fmt(s.median)}** (${fmt(s.min)}–${fmt(s.max)}, n=${s.runs})` : '—');

export function markdownReport(entries: BenchEntry[], info: RunInfo, chartFile: string): string {
  const lines: string[] = [];
  lines.push(`# Sparkler benchmark report (${info.mode})`, '');
  lines.push(`${info.date}; ${info.durationS.toFixed(0)} s; ${info.host}, ${info.cpus} CPUs, ${info.kvm}; Node ${info.node}; ${info.qemu ?? 'QEMU not found'}; guest kernel ${info.kernel}.`);
  lines.push(`Load average before ${info.loadBefore.map((x) => x.toFixed(1)).join(' ')}, after ${info.loadAfter.map((x) => x.toFixed(1)).join(' ')} (other work shares the machine: medians with min and max, ratios from the same run).`, '');
  lines.push(`![Sparkler beside QEMU](${chartFile})`, '');
  const table = (rows: BenchEntry[]): void => {
    lines.push('| name | unit | Sparkler median (min–max, n) | QEMU or C floor | ratio | where | configuration |');
    lines.push('| --- | --- | --- | --- | --- | --- | --- |');
    for (const e of rows) {
      const peer = e.against === 'c_floor' ? `C floor ${cell(e.floor)}` : cell(e.qemu);
      lines.push(`| ${e.name} | ${e.unit} | ${cell(e.sparkler)} | ${peer} | ${ratioCell(e)} | ${e.where} | ${e.variant}${e.note ? ` (${e.note})` : ''} |`);
    }
    lines.push('');
  };
  lines.push('## Headlines', '');
  table(entries.filter((e) => e.headline));
  lines.push('## Details', '');
  table(entries.filter((e) => !e.headline));
  const paired = entries.filter((e) => e.paired);
  if (paired.length > 0) {
    // Ready to paste into docs/benchmarks.md's history tables (one per figure).
    lines.push('## History rows (docs/benchmarks.md)', '');
    lines.push('| figure | date | commit | ratio | 95% interval | pairs |', '| --- | --- | --- | --- | --- | --- |');
    for (const e of paired) {
      const p = e.paired!;
      lines.push(`| ${e.name} | ${info.date.slice(0, 10)} | ${info.commit ?? '—'} | ${p.median.toFixed(3)}x | ${p.ci95 ? `${p.ci95[0].toFixed(3)}–${p.ci95[1].toFixed(3)}` : '—'} | ${p.pairs}${p.emuhostStalls > 0 ? ` (stalled ${p.emuhostStalls}x)` : ''} |`);
    }
    lines.push('');
  }
  if (info.problems.length > 0) {
    lines.push('## Problems in this run', '');
    for (const p of info.problems) lines.push(`- ${p}`);
    lines.push('');
  }
  lines.push('Ratios are Sparkler / peer medians: below 1 Sparkler is faster or smaller for times and memory; for rates (create_per_core_s) above 1 is better. Methods: docs/benchmarks.md.', '');
  return lines.join('\n');
}
