/**
 * The boot suite from the outside: finds the guest artifacts, writes the plan, runs it where
 * KVM boots stock Linux at speed (here with hardware KVM; otherwise inside the emulated KVM host,
 * one start-up of it for the whole suite), and turns the samples into result entries.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { detectKvmHost } from '../host/kvm-host';
import { BootConfig, bootKey, bootOrder, BootPlan, BootResults, BootSample, runBootPlan } from './boot';
import { BenchContext } from './context';
import { BenchEntry, makeEntry } from './results';
import { pairedBootEntries } from './paired';

export interface BootArtifacts {
  bzImage: string;
  vmlinux: string;
  initrd: string;
}

export async function findBootArtifacts(): Promise<BootArtifacts> {
  const { ensureKernel, ensureInitrd } = await import('../guest');
  return { bzImage: await ensureKernel({ format: 'bzimage' }), vmlinux: await ensureKernel(), initrd: await ensureInitrd() };
}

/** A configuration's name for --boot-configs: console on/off and the vCPU count ('off-1', 'on-2'). */
export const bootConfigKey = (c: Pick<BootConfig, 'console' | 'vcpus'>): string => `${c.console ? 'on' : 'off'}-${c.vcpus}`;

function plan(ctx: BenchContext, a: BootArtifacts, out: string): BootPlan {
  // quick: the headline configuration (console off, 1 vCPU) eleven times in both spans (the
  // emulated host's boots spread widely: quick runs of the same code gave medians from 0.86x to
  // 1.07x of QEMU's with seven), with both VMMs on the ELF vmlinux too (Firecracker's format); the
  // unbundled comparison (~6 s a boot there) is left to the full run and the local start-up suite;
  // the others once or twice, process start only; no new boot 300 s after the start, and the
  // emulated host killed 150 s later, so that the whole quick run stays under 10 minutes (on a
  // slow day the budget cuts the other configurations' second runs first, never the headline's).
  // The paired measure: the headline configuration 21 times, Sparkler and QEMU in ABBA order
  // (boot.ts bootOrder), the api span, the vmlinux boots and the warm pool's claim -> init in its
  // first 5 runs only; the
  // console-on configurations 9 and 7 times for their own paired ratios.
  const configs: BootConfig[] = ctx.quick
    ? [
      { console: false, vcpus: 1, modes: ['process', 'api'], extras: ['sparkler-vmlinux', 'qemu-vmlinux', 'sparkler-pool'], runs: 21, fullRuns: 5 },
      { console: false, vcpus: 2, modes: ['process'], runs: 2 },
      { console: true, vcpus: 1, modes: ['process'], runs: 9 },
      { console: true, vcpus: 2, modes: ['process'], runs: 7 },
    ]
    : [
      { console: false, vcpus: 1, modes: ['process', 'api'], extras: ['sparkler-vmlinux', 'qemu-vmlinux', 'sparkler-unbundled', 'sparkler-pinned', 'sparkler-pool'], runs: 31, fullRuns: 10 },
      { console: false, vcpus: 2, modes: ['process', 'api'], runs: 11, fullRuns: 5 },
      { console: true, vcpus: 1, modes: ['process', 'api'], extras: ['sparkler-vmlinux', 'qemu-vmlinux', 'sparkler-pinned'], runs: 21, fullRuns: 5 },
      { console: true, vcpus: 2, modes: ['process', 'api'], extras: ['sparkler-pinned'], runs: 21, fullRuns: 5 },
    ];
  const chosen = ctx.bootConfigs ? configs.filter((c) => ctx.bootConfigs!.includes(bootConfigKey(c))) : configs;
  return {
    sparklerBin: ctx.bin, qemu: ctx.qemu, bzImage: a.bzImage, vmlinux: a.vmlinux, initrd: a.initrd,
    memMiB: 128, configs: chosen, timeoutMs: ctx.quick ? 60_000 : 180_000, out,
    budgetMs: ctx.quick ? 420_000 : 0,
    experiment: ctx.experiments.find((v) => v.name === 'unbundled'),
  };
}

export async function runBootSuite(ctx: BenchContext): Promise<{ entries: BenchEntry[]; where: string; samples: BootSample[] }> {
  const artifacts = await findBootArtifacts();
  // The plan and the results go through /tmp, which the emulated host shares read-write.
  const shared = fs.mkdtempSync(path.join('/tmp', 'sparkler-bench-boot-'));
  const p = plan(ctx, artifacts, path.join(shared, 'results.json'));
  const planFile = path.join(shared, 'plan.json');
  fs.writeFileSync(planFile, JSON.stringify(p));
  const host = detectKvmHost();
  let where: string;
  try {
    let results: BootResults;
    if (host.kind === 'hardware') {
      where = "this machine's /dev/kvm";
      results = await runBootPlan(p, ctx.progress);
    } else {
      where = 'emulated KVM host (QEMU TCG, nested SVM)';
      ctx.progress(`boot suite: ${host.kind === 'pvm' ? 'this /dev/kvm is PVM' : 'no /dev/kvm'}: running inside the emulated KVM host (both VMMs in the same run)`);
      results = await runInEmulatedHost(ctx, p, planFile);
    }
    if (results.stalls) ctx.problems.push(`boot: the emulated KVM host stalled ${results.stalls} time(s) in this run (killed and started again); the paired entries say so too`);
    if (results.skipped) ctx.problems.push(`boot: the quick run's time budget was spent; ${results.skipped} boots were skipped (fewer runs than planned)`);
    return { entries: [...bootEntries(ctx, results.samples, where), ...pairedBootEntries(ctx, results.samples, where, results.stalls ?? 0)], where, samples: results.samples };
  } finally {
    fs.rmSync(shared, { recursive: true, force: true });
  }
}

/** Starts of the emulated host per suite: the first, and up to two more after it stalled. */
const MAX_EMUHOST_STARTS = 3;

/**
 * Runs the plan in the emulated KVM host, watching that it lives: the inner run touches
 * `<out>.alive` after every step. An emulated host that shows no sign of life (now and then one
 * hangs, both CPUs busy and nothing on its console) is killed and started again, while time is
 * left, for the boots it had not done yet (BootPlan.done); the samples of all starts are merged.
 */
async function runInEmulatedHost(ctx: BenchContext, p: BootPlan, planFile: string): Promise<BootResults> {
  const { runInEmuHost } = await import('../emuhost');
  const started = Date.now();
  const total = p.budgetMs > 0 ? p.budgetMs + 150_000 : p.configs.reduce((n, c) => n + c.runs * (c.modes.length * 2 + (c.extras?.length ?? 0)), 0) * 90_000 + 120_000;
  const aliveFile = `${p.out}.alive`;
  const measured: BootSample[] = [];
  let host = '';
  let stalls = 0;
  for (let attempt = 1; ; attempt++) {
    const left = total - (Date.now() - started);
    const plan: BootPlan = { ...p, budgetMs: p.budgetMs > 0 ? Math.max(60_000, left - 150_000) : 0, done: measured.map(bootKey) };
    fs.writeFileSync(planFile, JSON.stringify(plan));
    fs.rmSync(p.out, { force: true });
    fs.rmSync(aliveFile, { force: true });
    const launched = Date.now();
    const abort = new AbortController();
    let stalled = false;
    const watch = setInterval(() => {
      let last = launched;
      try {
        last = Number(fs.readFileSync(aliveFile, 'utf8')) || launched;
      } catch {
        // not started yet
      }
      // First sign of life: the emulated host boots and the warm-up ends within 3 minutes; then
      // every boot ends within its own timeout (and the 20 s Sparkler gets to log and stop).
      const limit = last === launched ? 180_000 : p.timeoutMs + 30_000;
      if (Date.now() - Math.max(last, launched) > limit) {
        stalled = true;
        abort.abort();
      }
    }, 5000);
    // cwd in the scratch directory, not the checkout: the emulated host shares the working
    // directory writable (9p, no metadata cache), while QEMU's binary and the guest images come
    // through the read-only root share (cached). Both VMMs' files now come the same way.
    const r = await runInEmuHost([process.execPath, path.join(__dirname, 'boot.js'), planFile], { cwd: path.dirname(planFile), stdio: 'inherit', timeoutMs: Math.max(60_000, left), signal: abort.signal });
    clearInterval(watch);
    if (stalled) stalls++;
    const results = fs.existsSync(p.out) ? (JSON.parse(fs.readFileSync(p.out, 'utf8')) as BootResults) : undefined;
    if (results) {
      measured.push(...results.samples);
      host = results.host;
    }
    if (r.code === 0 && results) return { host, where: '', samples: measured, skipped: results.skipped, stalls };
    // A host that failed only after its last boot (while shutting down) leaves nothing to redo.
    if (results && bootOrder({ ...p, done: measured.map(bootKey) }).length === 0) return { host, where: '', samples: measured, stalls };
    const why = stalled ? 'showed no sign of life' : `ended with code ${r.code}`;
    const boots = results?.samples.length ?? 0;
    if (attempt >= MAX_EMUHOST_STARTS || total - (Date.now() - started) < 120_000) {
      if (measured.length === 0) throw new Error(`the emulated KVM host run ${why} before any boot finished`);
      ctx.problems.push(`boot: the emulated KVM host run ${why} after ${boots} boots and was not started again (no time or starts left); the results are the ${measured.length} boots measured`);
      return { host, where: '', samples: measured, stalls };
    }
    ctx.problems.push(`boot: the emulated KVM host run ${why} after ${boots} boots; started it again for the boots not yet done`);
    ctx.progress(`boot suite: the emulated KVM host ${why} after ${boots} boots; starting it again for the boots not yet done`);
  }
}

export function bootEntries(ctx: BenchContext, samples: BootSample[], where: string): BenchEntry[] {
  for (const s of samples) if (s.error) ctx.problems.push(`boot ${s.vmm} ${s.mode} console=${s.console ? 'on' : 'off'} vcpus=${s.vcpus} run ${s.run + 1}: ${s.error}`);
  const pick = (vmm: string, mode: string, console: boolean, vcpus: number, f: (s: BootSample) => number | undefined = (s) => s.ms): number[] =>
    samples.filter((s) => s.vmm === vmm && s.mode === mode && s.console === console && s.vcpus === vcpus).map(f).filter((x): x is number => x !== undefined);
  const keys = [...new Set(samples.map((s) => `${s.mode}|${s.console}|${s.vcpus}`))];
  const entries: BenchEntry[] = [];
  for (const key of keys) {
    const [mode, c, v] = key.split('|');
    const console = c === 'true';
    const vcpus = Number(v);
    const span = mode === 'process' ? 'process start -> init' : 'InstanceStart (QEMU: QMP cont after -S) -> init';
    const variant = `${span}; serial console ${console ? 'on' : 'off'}; ${vcpus} vCPU${vcpus > 1 ? 's' : ''}; 128 MiB; same bzImage + initramfs`;
    const headline = mode === 'process' && !console && vcpus === 1;
    const name = headline ? 'boot_to_init_ms' : `boot_to_init_ms/${mode === 'process' ? 'process_start' : 'instance_start'}/console_${console ? 'on' : 'off'}/${vcpus}vcpu`;
    const qemu = pick('qemu', mode, console, vcpus);
    entries.push(makeEntry({ name, unit: 'ms', where, sparkler: pick('sparkler', mode, console, vcpus), qemu: ctx.qemu ? qemu : undefined, variant }));
    const unbundled = pick('sparkler-unbundled', mode, console, vcpus);
    if (unbundled.length > 0) {
      entries.push(makeEntry({
        name: `boot_to_init_ms/unbundled/${mode === 'process' ? 'process_start' : 'instance_start'}/console_${console ? 'on' : 'off'}/${vcpus}vcpu`, unit: 'ms', where,
        sparkler: unbundled, qemu: ctx.qemu ? qemu : undefined,
        variant: `${span}; bin/sparkler with SPARKLER_NO_BUNDLE=1: the modules loaded from dist/ one by one, as before the bundle shipped; same bzImage as QEMU`,
      }));
    }
    const pinned = pick('sparkler-pinned', mode, console, vcpus);
    if (pinned.length > 0) {
      entries.push(makeEntry({
        name: `boot_to_init_ms/pinned/${mode === 'process' ? 'process_start' : 'instance_start'}/console_${console ? 'on' : 'off'}/${vcpus}vcpu`, unit: 'ms', where,
        sparkler: pinned, qemu: ctx.qemu ? qemu : undefined,
        variant: `${span}; experiment: Sparkler pinned to one CPU (taskset -c 0), so each exit is handed between its vCPU thread and the VMM thread without a cross-CPU wake-up`,
      }));
    }
    const pooled = pick('sparkler-pool', mode, console, vcpus);
    if (pooled.length > 0) {
      entries.push(makeEntry({
        name: `boot_to_init_ms/pool_claim/console_${console ? 'on' : 'off'}/${vcpus}vcpu`, unit: 'ms', where,
        sparkler: pooled, qemu: ctx.qemu ? qemu : undefined,
        variant: `warm pool: claim (rename of an idle VMM's socket) -> PUT /boot-source, /machine-config, InstanceStart -> init, against QEMU's process start -> init (issue 19's target: <= 0.7x); console ${console ? 'on' : 'off'}; ${vcpus} vCPU${vcpus > 1 ? 's' : ''}`,
      }));
    }
    const vml = pick('sparkler-vmlinux', mode, console, vcpus);
    if (vml.length > 0) {
      // The same vmlinux for both when QEMU booted it (through the kernel's PVH note); else QEMU's bzImage boots.
      const qemuVml = pick('qemu-vmlinux', mode, console, vcpus);
      entries.push(makeEntry({
        name: `boot_to_init_ms/vmlinux/${mode === 'process' ? 'process_start' : 'instance_start'}/console_${console ? 'on' : 'off'}/${vcpus}vcpu`, unit: 'ms', where,
        sparkler: vml, qemu: ctx.qemu ? (qemuVml.length > 0 ? qemuVml : qemu) : undefined,
        variant: qemuVml.length > 0
          ? `${span}; both VMMs boot the same uncompressed ELF vmlinux (Firecracker's format; QEMU through its PVH entry) + initramfs`
          : `${span}; Sparkler boots the uncompressed ELF vmlinux (as Firecracker does), QEMU the bzImage`,
      }));
    }
    if (mode === 'process') {
      const self = pick('sparkler', mode, console, vcpus, (s) => s.selfMs);
      if (headline && self.length > 0) {
        entries.push(makeEntry({
          name: 'boot_to_init_ms/sparkler_boot_timer', unit: 'ms', where, sparkler: self,
          variant: "Sparkler's own boot-timer figure (Node's process start -> init), for the same boots as boot_to_init_ms",
        }));
        entries.push(makeEntry({
          name: 'boot_to_init_ms/sparkler_to_first_kvm_run', unit: 'ms', where,
          sparkler: pick('sparkler', mode, console, vcpus, (s) => s.firstRunMs),
          variant: "Sparkler's Debug log: Node's process start -> first KVM_RUN (the VMM's own part of boot_to_init_ms)",
        }));
      }
    }
  }
  // The guest's part alone: from the first vCPU run to init. Sparkler: boot timer minus first
  // KVM_RUN (every Sparkler boot of that configuration); QEMU: `cont` after -S -> init.
  for (const key of [...new Set(samples.map((s) => `${s.console}|${s.vcpus}`))]) {
    const [c, v] = key.split('|');
    const console = c === 'true';
    const vcpus = Number(v);
    const guestPart = (vmm: string): number[] => samples
      .filter((s) => s.vmm === vmm && s.console === console && s.vcpus === vcpus && s.selfMs !== undefined && s.firstRunMs !== undefined)
      .map((s) => s.selfMs! - s.firstRunMs!);
    const qemu = pick('qemu', 'api', console, vcpus);
    const tail = `console ${console ? 'on' : 'off'}; ${vcpus} vCPU${vcpus > 1 ? 's' : ''}`;
    entries.push(makeEntry({
      name: `guest_boot_ms/console_${console ? 'on' : 'off'}/${vcpus}vcpu`, unit: 'ms', where, sparkler: guestPart('sparkler'), qemu: ctx.qemu && qemu.length > 0 ? qemu : undefined,
      variant: `first vCPU run -> init (Sparkler: boot timer minus first KVM_RUN; QEMU: QMP cont after -S -> init, qboot included); ${tail}`,
      note: qemu.length === 0 && ctx.qemu ? 'QEMU not run with -S in this configuration' : undefined,
    }));
    const pinned = guestPart('sparkler-pinned');
    if (pinned.length > 0) {
      entries.push(makeEntry({
        name: `guest_boot_ms/pinned/console_${console ? 'on' : 'off'}/${vcpus}vcpu`, unit: 'ms', where, sparkler: pinned, qemu: ctx.qemu && qemu.length > 0 ? qemu : undefined,
        variant: `first vCPU run -> init, Sparkler pinned to one CPU (taskset -c 0); ${tail}`,
      }));
    }
  }
  return entries;
}
