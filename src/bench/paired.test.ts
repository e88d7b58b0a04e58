/** Unit tests for the paired boot measure: the bootstrap, the pair ratios, ABBA order, entries, chart. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootstrapMedianInterval, pairedDifference, pairedRatio, quantile, seededRandom } from './stats';
import { bootOrder, BootSample } from './boot';
import { pairedBootEntries, pairedName } from './paired';
import { markdownReport, RunInfo } from './results';
import { chartSvg } from './chart';

test('quantiles interpolate between order statistics', () => {
  assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
  assert.equal(quantile([1, 2, 3, 4], 0), 1);
  assert.equal(quantile([1, 2, 3, 4], 1), 4);
  assert.equal(quantile([10, 20], 0.25), 12.5);
  assert.ok(Number.isNaN(quantile([], 0.5)));
});

test('the seeded PRNG repeats for a seed, differs across seeds and stays in [0, 1)', () => {
  const a = seededRandom(7);
  const b = seededRandom(7);
  const c = seededRandom(8);
  const xs = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(xs.slice(0, 5), Array.from({ length: 5 }, () => b()));
  assert.notEqual(xs[0], c());
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
});

test('bootstrap interval of the median: contains the median, narrows with more data, covers the truth', () => {
  assert.equal(bootstrapMedianInterval([1]), null);
  const [lo, hi] = bootstrapMedianInterval([5, 5, 5, 5])!;
  assert.deepEqual([lo, hi], [5, 5], 'no spread, no interval width');
  // Normal-ish samples around 1.0 (Box-Muller on the seeded PRNG).
  const rnd = seededRandom(42);
  const normal = (): number => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
  const small = Array.from({ length: 21 }, () => 1 + 0.1 * normal());
  const large = Array.from({ length: 201 }, () => 1 + 0.1 * normal());
  const a = bootstrapMedianInterval(small)!;
  const b = bootstrapMedianInterval(large)!;
  const med = quantile([...small].sort((x, y) => x - y), 0.5);
  assert.ok(a[0] <= med && med <= a[1], `${a} holds the sample median ${med}`);
  assert.ok(b[1] - b[0] < a[1] - a[0], 'ten times the pairs, a narrower interval');
  assert.ok(b[0] < 1 && 1 < b[1], `${b} covers the true median 1.0`);
  // Coverage: over 100 data sets of 21, the 95% interval holds the true median in most of them.
  let covered = 0;
  for (let k = 0; k < 100; k++) {
    const xs = Array.from({ length: 21 }, () => 1 + 0.1 * normal());
    const [l, h] = bootstrapMedianInterval(xs, { iterations: 1000, random: seededRandom(k) })!;
    if (l <= 1 && 1 <= h) covered++;
  }
  assert.ok(covered >= 88 && covered <= 100, `covered ${covered}/100`);
});

test('paired ratio: per-pair ratios, incomplete pairs left out, spread and interval', () => {
  assert.equal(pairedRatio([undefined], [1]), null);
  const p = pairedRatio([90, 100, undefined, 120, 80], [100, 100, 100, 100, 100])!;
  assert.equal(p.pairs, 4);
  assert.equal(p.median, 0.95);
  assert.deepEqual([p.spread.min, p.spread.max], [0.8, 1.2]);
  assert.ok(p.ci95![0] <= p.median && p.median <= p.ci95![1]);
  assert.equal(pairedRatio([90], [100])!.ci95, null, 'one pair: no interval');
  // A drift that moves both VMMs alike leaves the pair ratios still.
  const drift = [1, 1.5, 2, 0.8, 1.2, 3, 1, 1.1];
  const s = drift.map((d) => 900 * d);
  const q = drift.map((d) => 1000 * d);
  const still = pairedRatio(s, q)!;
  assert.equal(still.median, 0.9);
  assert.deepEqual(still.ci95, [0.9, 0.9]);
});

test('boot order: ABBA pairs, and after fullRuns only the two VMMs in the process span', () => {
  const plan = {
    qemu: 'qemu-system-x86_64',
    configs: [{ console: false, vcpus: 1, modes: ['process' as const, 'api' as const], extras: ['qemu-vmlinux' as const], runs: 4, fullRuns: 1 }],
  };
  const names = bootOrder(plan).map((t) => `${t.vmm}:${t.mode}:${t.run}`);
  assert.deepEqual(names, [
    'sparkler:process:0', 'qemu:process:0', 'qemu-vmlinux:process:0', 'sparkler:api:0', 'qemu:api:0',
    'qemu:process:1', 'sparkler:process:1',
    'sparkler:process:2', 'qemu:process:2',
    'qemu:process:3', 'sparkler:process:3',
  ]);
});

const INFO: RunInfo = {
  date: '2026-12-06T06:00:00Z', mode: 'quick', durationS: 1, host: 'h', kvm: 'k', cpus: 2, loadBefore: [0, 0, 0], loadAfter: [0, 0, 0],
  node: 'v20', qemu: 'q', kernel: 'k', problems: [], commit: 'abc1234',
};

test('paired entries: one per configuration, by run index, with per-VMM medians beside; stalls recorded', () => {
  const s = (vmm: BootSample['vmm'], run: number, ms: number | undefined, console = false): BootSample => ({ vmm, console, vcpus: 1, mode: 'process', run, ms });
  const samples = [
    s('sparkler', 0, 800), s('qemu', 0, 1000), s('qemu', 1, 2000), s('sparkler', 1, 1800),
    s('sparkler', 2, undefined), s('qemu', 2, 1000), s('sparkler-vmlinux', 0, 10),
    s('sparkler', 0, 1100, true), s('qemu', 0, 1000, true),
  ];
  const entries = pairedBootEntries({ qemu: 'q' }, samples, 'here', 1);
  assert.deepEqual(entries.map((e) => e.name), [pairedName(false, 1), pairedName(true, 1)]);
  const off = entries[0];
  assert.equal(off.paired!.pairs, 2);
  assert.equal(off.ratio, 0.85);
  assert.equal(off.sparkler!.median, 1300, 'the per-VMM medians stay beside the paired ratio');
  assert.equal(off.qemu!.runs, 3);
  assert.equal(off.paired!.emuhostStalls, 1);
  assert.match(off.note!, /stalled 1 time/);
  assert.deepEqual(pairedBootEntries({}, samples, 'here', 0), [], 'no QEMU, no pairs');
  const md = markdownReport(entries, INFO, 'chart.svg');
  assert.match(md, /\| boot_paired_ratio\/process_start\/console_off\/1vcpu \| 2026-12-06 \| abc1234 \| 0\.850x \| /);
  const svg = chartSvg(entries, 't');
  assert.match(svg, /0\.85x \[/);
  assert.match(svg, /<circle /);
});

test('paired difference: per-round a - b, the rounds missing a side left out', () => {
  assert.equal(pairedDifference([undefined], [1]), null);
  const d = pairedDifference([40, 45, undefined, 50], [30, 30, 30, 44])!;
  assert.equal(d.pairs, 3);
  assert.equal(d.median, 10);
  assert.deepEqual([d.spread.min, d.spread.max], [6, 15]);
  assert.ok(d.ci95![0] >= 6 && d.ci95![1] <= 15);
});
