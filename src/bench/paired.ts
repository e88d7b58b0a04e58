/**
 * The boot measure that holds still: Sparkler and QEMU boots of one configuration alternate ABBA
 * (boot.ts bootOrder), run r of each VMM forms pair r, and the figure is the median of the
 * per-pair ratios with a 95% bootstrap interval. A host that drifts (other tenants, the emulated
 * host's state) moves both boots of a pair alike, so the ratio spreads far less than either
 * VMM's boots do; a change counts as a gain when its interval excludes the old median.
 */
import type { BootSample } from './boot';
import type { BenchContext } from './context';
import { BenchEntry, makeEntry } from './results';
import { pairedRatio } from './stats';

/** The span, console and vCPU count of the paired configurations, as entry names. */
export const pairedName = (console: boolean, vcpus: number): string =>
  `boot_paired_ratio/process_start/console_${console ? 'on' : 'off'}/${vcpus}vcpu`;

/** The per-run times of one VMM in one configuration, by run index (undefined: failed or not run). */
function byRun(samples: readonly BootSample[], vmm: string, console: boolean, vcpus: number): (number | undefined)[] {
  const out: (number | undefined)[] = [];
  for (const s of samples) {
    if (s.vmm === vmm && s.mode === 'process' && s.console === console && s.vcpus === vcpus) out[s.run] = s.ms;
  }
  return out;
}

/** One paired entry per configuration that has at least one complete Sparkler/QEMU pair. */
export function pairedBootEntries(ctx: Pick<BenchContext, 'qemu'>, samples: readonly BootSample[], where: string, emuhostStalls: number): BenchEntry[] {
  if (!ctx.qemu) return [];
  const configs = [...new Set(samples.map((s) => `${s.console}|${s.vcpus}`))].map((k) => {
    const [c, v] = k.split('|');
    return { console: c === 'true', vcpus: Number(v) };
  });
  configs.sort((a, b) => Number(a.console) - Number(b.console) || a.vcpus - b.vcpus);
  const entries: BenchEntry[] = [];
  for (const { console, vcpus } of configs) {
    const s = byRun(samples, 'sparkler', console, vcpus);
    const q = byRun(samples, 'qemu', console, vcpus);
    const paired = pairedRatio(s, q);
    if (!paired) continue;
    entries.push(makeEntry({
      name: pairedName(console, vcpus), unit: 'ms', where,
      sparkler: s.filter((x): x is number => x !== undefined), qemu: q.filter((x): x is number => x !== undefined),
      variant: `process start -> init, Sparkler / QEMU per ABBA pair (median of pair ratios, 95% bootstrap interval); serial console ${console ? 'on' : 'off'}; ${vcpus} vCPU${vcpus > 1 ? 's' : ''}; 128 MiB; same bzImage + initramfs; sparkler/qemu: the per-VMM medians`,
      paired: { ...paired, emuhostStalls },
      note: emuhostStalls > 0 ? `the emulated host stalled ${emuhostStalls} time(s) during the run` : undefined,
    }));
  }
  return entries;
}
