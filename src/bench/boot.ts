/**
 * Boot time to the guest's init, Sparkler beside QEMU microvm, on the same bzImage, initramfs,
 * command line, RAM and vCPU count, one boot after the other (order alternating) on the same
 * host. The guest's init writes 123 at 0xC000_0000; both VMMs report that write on a pipe the
 * moment they handle the exit (Sparkler's boot-timer log line on stdout; QEMU's guest_errors
 * log line on a FIFO), and this harness timestamps the arrival. Two spans:
 *   process: spawn() of the VMM -> init (Sparkler --no-api --config-file; QEMU's command line);
 *   api:     InstanceStart sent -> init (Sparkler: PUT /actions after PUT /boot-source and
 *            /machine-config; QEMU: started with -S, the QMP `cont` command).
 * Where /dev/kvm cannot boot stock Linux at speed (PVM), the whole suite runs inside the
 * emulated KVM host, both VMMs in the same run (src/emuhost).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { firstLine, httpUnix, killAndWait, now, openFifo, Qmp, Spawned, spawnSparkler, spawnTimed, vmmEnv, waitForSocket, watchLines, withTimeout } from './proc';
import { microvmArgs, QEMU_INIT_LINE } from './qemu';
import { DEFAULT_BOOT_ARGS } from '../config/boot-source';

export type BootVmm = 'sparkler' | 'qemu' | 'sparkler-vmlinux' | 'qemu-vmlinux' | 'sparkler-unbundled' | 'sparkler-pinned' | 'sparkler-pool';
/** Variants booted beside the two VMMs (process start span only). */
export type BootExtra = Exclude<BootVmm, 'sparkler' | 'qemu'>;
export type BootMode = 'process' | 'api';

export interface BootConfig {
  console: boolean;
  vcpus: number;
  modes: BootMode[];
  /** Repetitions of this configuration. */
  runs: number;
  /**
   * Runs (the first ones) that boot every mode and extra; the runs after them boot only Sparkler
   * and QEMU in the process span, the pairs of the paired measure. Default: all of them.
   */
  fullRuns?: number;
  /**
   * Variants also booted (process span): either VMM on the uncompressed ELF vmlinux (no
   * in-guest decompression; QEMU enters it through its PVH note), Sparkler's start-up experiment
   * (plan.experiment), or Sparkler pinned to one CPU (taskset: the vCPU thread and the VMM thread
   * hand each exit over on the same CPU), or a VMM from a warm pool (its span starts at the
   * claim: the process started and went idle before).
   */
  extras?: BootExtra[];
}

export interface BootPlan {
  sparklerBin: string;
  qemu?: string;
  bzImage: string;
  vmlinux: string;
  initrd: string;
  memMiB: number;
  configs: BootConfig[];
  timeoutMs: number;
  /** No new boot starts this many ms after the run began, warm-up included (the quick run's time budget); 0: no limit. */
  budgetMs: number;
  /** Sparkler without its bundle (SPARKLER_NO_BUNDLE=1), measured beside bin/sparkler as shipped. */
  experiment?: { command: string; args: string[]; env: Record<string, string> };
  out: string;
  /** bootKey of boots already measured (by an earlier start of the emulated host): not run again. */
  done?: string[];
}

export interface BootSample {
  vmm: BootVmm;
  console: boolean;
  vcpus: number;
  mode: BootMode;
  run: number;
  /** The span measured by this harness, ms; undefined when the boot failed. */
  ms?: number;
  /** Sparkler's own boot-timer figure (Node's process start -> init), ms. */
  selfMs?: number;
  /** Sparkler's Debug log: Node's process start -> first KVM_RUN, ms (so selfMs - firstRunMs is the guest's part). */
  firstRunMs?: number;
  error?: string;
}

export interface BootResults {
  host: string;
  where: string;
  samples: BootSample[];
  /** Boots not started because the time budget was spent. */
  skipped?: number;
  /** Times the emulated host stalled (showed no sign of life) and was started again. */
  stalls?: number;
}

/**
 * The command line both VMMs boot with: Firecracker's default (what a VM gets when boot_args is
 * left out, in Firecracker and in Sparkler: config/boot-source.ts), the setting its boot-time
 * promise is made for. It spares the guest probes of hardware a microVM does not have or does
 * not need probed (the legacy UARTs with the console off, the i8042's aux port and keyboard
 * commands). With the console on, `console=ttyS0` is added and `8250.nr_uarts=0` dropped.
 */
export const cmdlineFor = (console: boolean): string =>
  console ? `console=ttyS0 ${DEFAULT_BOOT_ARGS.split(' ').filter((a) => !a.startsWith('8250.nr_uarts=')).join(' ')}` : DEFAULT_BOOT_ARGS;

const SPARKLER_INIT_LINE = /Guest-boot-time = +(\d+) us/;
const SPARKLER_FIRST_RUN_LINE = /process start to first KVM_RUN ([\d.]+) ms/;

/**
 * After the init mark: SIGTERM, so Sparkler stops the VM and logs (at Debug) when its first
 * KVM_RUN happened; then make sure the process is gone.
 */
async function sparklerFinish(p: Spawned, firstRun: Promise<{ match: RegExpMatchArray }>): Promise<number | undefined> {
  p.child.kill('SIGTERM');
  try {
    const { match } = await withTimeout(firstRun, 20_000, 'the first-KVM_RUN log line');
    return Number(match[1]);
  } catch {
    return undefined;
  } finally {
    await killAndWait(p);
  }
}

/** A private directory on tmpfs for sockets and FIFOs (inside the emulated host /tmp is 9p). */
export function scratchDir(tag: string): string {
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  try {
    return fs.mkdtempSync(path.join(base, `sparkler-bench-${tag}-`));
  } catch {
    return fs.mkdtempSync(path.join(os.tmpdir(), `sparkler-bench-${tag}-`));
  }
}

interface OneBoot {
  kernel: string;
  console: boolean;
  vcpus: number;
}

interface SparklerBoot {
  ms: number;
  selfMs: number;
  firstRunMs?: number;
}

async function sparklerProcess(plan: BootPlan, dir: string, b: OneBoot, vmm: BootVmm): Promise<SparklerBoot> {
  const config = path.join(dir, 'vm.json');
  fs.writeFileSync(config, JSON.stringify({
    'boot-source': { kernel_image_path: b.kernel, initrd_path: plan.initrd, boot_args: cmdlineFor(b.console) },
    'machine-config': { vcpu_count: b.vcpus, mem_size_mib: plan.memMiB },
  }));
  const launch = vmm === 'sparkler-unbundled' && plan.experiment ? plan.experiment
    : vmm === 'sparkler-pinned' ? { command: 'taskset', args: ['-c', '0', plan.sparklerBin], env: {} }
      : { command: plan.sparklerBin, args: [], env: {} };
  const p = spawnSparkler(launch, ['--no-api', '--boot-timer', '--level', 'Debug', '--config-file', config]);
  const firstRun = firstLine(p, p.child.stdout, SPARKLER_FIRST_RUN_LINE);
  firstRun.catch(() => undefined);
  let boot: SparklerBoot;
  try {
    const { at, match } = await withTimeout(firstLine(p, p.child.stdout, SPARKLER_INIT_LINE), plan.timeoutMs, 'Sparkler boot');
    boot = { ms: at - p.startedAt, selfMs: Number(match[1]) / 1000 };
  } catch (err) {
    await killAndWait(p);
    throw err;
  }
  boot.firstRunMs = await sparklerFinish(p, firstRun);
  return boot;
}

/** PUT /boot-source and /machine-config for one boot of the plan. */
async function putBootConfig(plan: BootPlan, sock: string, b: OneBoot): Promise<void> {
  for (const [route, body] of [
    ['/boot-source', { kernel_image_path: b.kernel, initrd_path: plan.initrd, boot_args: cmdlineFor(b.console) }],
    ['/machine-config', { vcpu_count: b.vcpus, mem_size_mib: plan.memMiB }],
  ] as const) {
    const r = await httpUnix(sock, 'PUT', route, body);
    if (r.status !== 204) throw new Error(`PUT ${route} answered ${r.status}: ${r.body}`);
  }
}

async function sparklerApi(plan: BootPlan, dir: string, b: OneBoot): Promise<SparklerBoot> {
  const sock = path.join(dir, 'api.sock');
  const p = spawnTimed(plan.sparklerBin, ['--api-sock', sock, '--boot-timer', '--level', 'Debug'], { env: vmmEnv() });
  const firstRun = firstLine(p, p.child.stdout, SPARKLER_FIRST_RUN_LINE);
  firstRun.catch(() => undefined);
  let boot: SparklerBoot;
  try {
    const init = firstLine(p, p.child.stdout, SPARKLER_INIT_LINE);
    init.catch(() => undefined);
    await waitForSocket(sock, p, plan.timeoutMs);
    await putBootConfig(plan, sock, b);
    const sent = now();
    httpUnix(sock, 'PUT', '/actions', { action_type: 'InstanceStart' }).catch(() => undefined);
    const { at, match } = await withTimeout(init, plan.timeoutMs, 'Sparkler boot after InstanceStart');
    boot = { ms: at - sent, selfMs: Number(match[1]) / 1000 };
  } catch (err) {
    await killAndWait(p);
    throw err;
  }
  boot.firstRunMs = await sparklerFinish(p, firstRun);
  return boot;
}

/** How long a pooled VMM sits idle before its claim: past its memory settle (docs/pool.md), as a pool's VMMs are. */
const POOL_IDLE_MS = 1500;

/**
 * A warm pool's boot: the VMM was started before (and went idle); the span is the claim (the
 * rename of its socket, as `claimVmm` does) -> PUT /boot-source, /machine-config, InstanceStart
 * -> init, what a pool's client waits for.
 */
async function sparklerPooled(plan: BootPlan, dir: string, b: OneBoot): Promise<{ ms: number }> {
  const idle = path.join(dir, 'idle.sock');
  const p = spawnTimed(plan.sparklerBin, ['--api-sock', idle, '--boot-timer'], { env: vmmEnv() });
  try {
    const init = firstLine(p, p.child.stdout, SPARKLER_INIT_LINE);
    init.catch(() => undefined);
    await waitForSocket(idle, p, plan.timeoutMs);
    await new Promise((r) => setTimeout(r, POOL_IDLE_MS));
    const claimed = path.join(dir, 'claimed.sock');
    const claimedAt = now();
    fs.renameSync(idle, claimed);
    await putBootConfig(plan, claimed, b);
    httpUnix(claimed, 'PUT', '/actions', { action_type: 'InstanceStart' }).catch(() => undefined);
    const { at } = await withTimeout(init, plan.timeoutMs, 'pooled Sparkler boot after its claim');
    return { ms: at - claimedAt };
  } finally {
    await killAndWait(p);
  }
}

async function qemuBoot(plan: BootPlan, dir: string, b: OneBoot, mode: BootMode): Promise<{ ms: number }> {
  const log = path.join(dir, 'qemu.log');
  const fifo = openFifo(log);
  const qmpSock = mode === 'api' ? path.join(dir, 'qmp.sock') : undefined;
  const p = spawnTimed(plan.qemu!, microvmArgs({
    kernel: b.kernel, initrd: plan.initrd, cmdline: cmdlineFor(b.console), vcpus: b.vcpus, memMiB: plan.memMiB, log, qmp: qmpSock,
  }));
  watchLines(p.child.stdout, () => undefined); // the serial console: drained, not kept
  try {
    const init = firstLine(p, fifo, QEMU_INIT_LINE);
    init.catch(() => undefined);
    let from = p.startedAt;
    if (qmpSock) {
      await waitForSocket(qmpSock, p, plan.timeoutMs);
      const qmp = await Qmp.connect(qmpSock);
      try {
        await qmp.next(); // greeting
        await qmp.command('qmp_capabilities');
        from = now();
        qmp.command('cont').catch(() => undefined);
        const { at } = await withTimeout(init, plan.timeoutMs, 'QEMU boot after cont');
        return { ms: at - from };
      } finally {
        qmp.close();
      }
    }
    const { at } = await withTimeout(init, plan.timeoutMs, 'QEMU boot');
    return { ms: at - from };
  } finally {
    await killAndWait(p);
    fifo.destroy();
  }
}

/** One boot of the plan: which VMM, in which span, for which configuration and repetition. */
export interface BootTask {
  run: number;
  c: BootConfig;
  mode: BootMode;
  vmm: BootVmm;
}

/** Names a boot the same way for a task and for its sample (BootPlan.done holds these). */
export const bootKey = (b: { vmm: BootVmm; mode: BootMode; console: boolean; vcpus: number; run: number }): string =>
  `${b.vmm}|${b.mode}|console=${b.console ? 'on' : 'off'}|vcpus=${b.vcpus}|run=${b.run}`;

/**
 * The plan's boots in the order they run: every configuration once first, then the first
 * (headline) configuration's remaining runs, then the others' round by round, so that a run cut
 * short loses the least; within a round the VMMs alternate which goes first. Boots named in
 * plan.done (measured by an earlier start of the emulated host) are left out. Sparkler and QEMU
 * go ABBA (run 0 Sparkler first, run 1 QEMU first, ...): each run's two boots are a pair whose
 * ratio a slow drift of the host (other tenants, the emulated host's state) barely moves.
 */
export function bootOrder(plan: Pick<BootPlan, 'configs' | 'qemu' | 'experiment' | 'done'>): BootTask[] {
  const rounds: { run: number; c: BootConfig; order: number }[] = [];
  plan.configs.forEach((c, i) => {
    for (let run = 0; run < c.runs; run++) rounds.push({ run, c, order: run === 0 ? i : i === 0 ? 1000 + run : 2000 + run * 100 + i });
  });
  rounds.sort((a, b) => a.order - b.order);
  const done = new Set(plan.done ?? []);
  const tasks: BootTask[] = [];
  for (const { run, c } of rounds) {
    const full = run < (c.fullRuns ?? c.runs);
    for (const mode of full ? c.modes : c.modes.filter((m) => m === 'process')) {
      const vmms: BootVmm[] = plan.qemu ? ['sparkler', 'qemu'] : ['sparkler'];
      if (run % 2 === 1) vmms.reverse();
      if (mode === 'process' && full) {
        const extras = (c.extras ?? []).filter((x) => (x !== 'sparkler-unbundled' || plan.experiment) && (x !== 'qemu-vmlinux' || plan.qemu));
        vmms.push(...(run % 2 === 1 ? extras.reverse() : extras));
      }
      for (const vmm of vmms) {
        if (!done.has(bootKey({ vmm, mode, console: c.console, vcpus: c.vcpus, run }))) tasks.push({ run, c, mode, vmm });
      }
    }
  }
  return tasks;
}

/** Runs the plan where it is (the caller chose a host whose KVM boots Linux at speed). */
export async function runBootPlan(plan: BootPlan, progress: (line: string) => void): Promise<BootResults> {
  const alive = (): void => {
    if (plan.out) fs.writeFileSync(`${plan.out}.alive`, String(Date.now()));
  };
  const began = now();
  alive();
  const warm = warmUp(plan);
  alive();
  progress(`warm-up: read ${(warm.bytes / 2 ** 20).toFixed(0)} MiB of binaries, code and guest images in ${warm.ms.toFixed(0)} ms`);
  const samples: BootSample[] = [];
  let skipped = 0;
  for (const { run, c, mode, vmm } of bootOrder(plan)) {
    if (plan.budgetMs > 0 && now() - began > plan.budgetMs) {
      skipped++;
      continue;
    }
    const dir = scratchDir('boot');
    const sample: BootSample = { vmm, console: c.console, vcpus: c.vcpus, mode, run };
    alive();
    if (process.env.SPARKLER_BENCH_VERBOSE === '1') progress(`boot ${run + 1}/${c.runs} ${vmm} ${mode} console=${c.console ? 'on' : 'off'} vcpus=${c.vcpus}: starting`);
    const kernel = vmm.endsWith('-vmlinux') ? plan.vmlinux : plan.bzImage;
    const one = { kernel, console: c.console, vcpus: c.vcpus };
    try {
      if (vmm === 'qemu' || vmm === 'qemu-vmlinux') Object.assign(sample, await qemuBoot(plan, dir, one, mode));
      else if (vmm === 'sparkler-pool') Object.assign(sample, await sparklerPooled(plan, dir, one));
      else Object.assign(sample, mode === 'api' ? await sparklerApi(plan, dir, one) : await sparklerProcess(plan, dir, one, vmm));
    } catch (err) {
      sample.error = (err as Error).message;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    samples.push(sample);
    alive();
    // Written after every boot, so that a run cut short still leaves what it measured.
    if (plan.out) fs.writeFileSync(plan.out, JSON.stringify({ host: os.hostname(), where: '', samples, skipped }));
    progress(`boot ${run + 1}/${c.runs} ${vmm} ${mode} console=${c.console ? 'on' : 'off'} vcpus=${c.vcpus}: ${sample.ms !== undefined ? `${sample.ms.toFixed(1)} ms` : `failed (${sample.error})`}`);
  }
  if (skipped > 0) progress(`time budget of ${(plan.budgetMs / 1000).toFixed(0)} s spent: ${skipped} boots skipped`);
  return { host: os.hostname(), where: '', samples, skipped };
}

/**
 * Reads everything both VMMs load (node, the compiled code, the addon, QEMU and its firmware, the
 * kernel and initramfs) once before measuring, so that no boot pays for a cold page cache (in the
 * emulated host the files come over 9p, and the first read is seconds).
 */
function warmUp(plan: BootPlan): { bytes: number; ms: number } {
  const t = now();
  let bytes = 0;
  const read = (file: string): void => {
    try {
      const st = fs.statSync(file);
      if (st.isDirectory()) fs.readdirSync(file).forEach((f) => read(path.join(file, f)));
      else if (st.isFile()) bytes += fs.readFileSync(file).length;
    } catch {
      // not there: nothing to warm
    }
  };
  const root = path.resolve(path.dirname(fs.realpathSync(plan.sparklerBin)), '..');
  [process.execPath, path.join(root, 'dist'), path.join(root, 'build', 'Release'), plan.bzImage, plan.vmlinux, plan.initrd].forEach(read);
  if (plan.qemu) {
    const which = spawnSync('sh', ['-c', `command -v ${plan.qemu}`], { encoding: 'utf8' }).stdout.trim();
    if (which) read(which);
    read('/usr/share/qemu/bios-microvm.bin');
    read('/usr/share/seabios/bios-microvm.bin');
  }
  return { bytes, ms: now() - t };
}

/** Entry point inside the emulated host: node dist/bench/boot.js PLAN.json */
async function main(planFile: string): Promise<void> {
  const plan = JSON.parse(fs.readFileSync(planFile, 'utf8')) as BootPlan;
  const results = await runBootPlan(plan, (line) => process.stderr.write(`[bench] ${line}\n`));
  fs.writeFileSync(plan.out, JSON.stringify(results));
}

if (require.main === module) {
  main(process.argv[2]).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`[bench] boot suite failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
