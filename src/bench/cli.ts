/**
 * `sparkler bench [--quick] [--only SUITES] [--out DIR]`: runs the benchmark suites side by side
 * with QEMU's microvm and writes DIR/latest.json (bench/results by default), a markdown report
 * and an SVG chart. Suites: boot and net (inside the emulated KVM host when this /dev/kvm is
 * PVM), memory, startup, create, exits (on this machine's /dev/kvm). See docs/benchmarks.md.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { detectKvmHost } from '../host/kvm-host';
import { runBootSuite } from './boot-suite';
import { chartSvg } from './chart';
import { BenchContext, REPO_ROOT } from './context';
import { createSuite } from './create';
import { exitSuite } from './exits';
import { memorySuite } from './memory';
import { netSuite } from './net';
import { findQemu, qemuVersion } from './qemu';
import { BenchEntry, markdownReport, orderEntries, RunInfo } from './results';
import { startupSuite } from './startup';
import { prepareExperiments } from './variants';

const SUITES = ['boot', 'memory', 'startup', 'create', 'exits', 'net'] as const;

/** Details drawn in the chart beside the five headlines (the report's tables have them all). */
const CHART_DETAILS = [
  /^boot_paired_ratio\//,
  /^boot_to_init_ms\/unbundled\//, /^boot_to_init_ms\/instance_start\/console_off\/1vcpu$/, /^boot_to_init_ms\/process_start\/console_on\/1vcpu$/,
  /^guest_boot_ms\/console_off\/1vcpu$/, /^guest_boot_ms\/(pinned\/)?console_on\/1vcpu$/,
  /^vmm_pss_mib\/20_vms$/, /^vmm_private_mib\/node_floor$/,
  /^process_start_to_guest_ms(\/unbundled)?$/, /^api_ready_ms\/unbundled$/,
  /^exit_roundtrip_cpu_us$/, /^exit_roundtrip_us\/(pinned|qemu)$/, /^serial_tx_us_per_byte$/,
];
type Suite = (typeof SUITES)[number];
/** Without --only: all but net, which is asked for by name (minutes of transfers in the emulated host). */
const DEFAULT_SUITES: readonly Suite[] = SUITES.filter((s) => s !== 'net');

const USAGE = `Usage: sparkler bench [--quick] [--only ${SUITES.join(',')}] [--out DIR] [--no-experiments] [--boot-configs off-1,off-2,on-1,on-2]

Runs Sparkler and QEMU microvm side by side and writes DIR/latest.json (default bench/results),
DIR/report.md and DIR/chart.svg. --quick: fewer repetitions (under 10 minutes on 2 cores).
The net suite (TCP throughput, ping, CPU per GiB beside QEMU's virtio-net) runs only when
named: --only net.
--no-experiments: measure bin/sparkler only, not the comparisons (unbundled start-up, pinned CPU).
--boot-configs: only these boot configurations (serial console off/on - vCPUs), e.g. on-1,on-2.
`;

function log(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

function kernelRelease(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    return os.release();
  }
}

function gitCommit(): string | undefined {
  const r = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: REPO_ROOT, encoding: 'utf8' }).stdout.trim() !== '';
  return `${r.stdout.trim()}${dirty ? '+dirty' : ''}`;
}

export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { quick: { type: 'boolean' }, only: { type: 'string' }, 'boot-configs': { type: 'string' }, out: { type: 'string' }, 'no-experiments': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (err) {
    process.stderr.write(`sparkler bench: ${(err as Error).message}\n${USAGE}`);
    return 153;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const only = values.only ? values.only.split(',').map((s) => s.trim()) : [...DEFAULT_SUITES];
  const unknown = only.filter((s) => !(SUITES as readonly string[]).includes(s));
  if (unknown.length > 0) {
    process.stderr.write(`sparkler bench: unknown suite ${unknown.join(', ')}; the suites are ${SUITES.join(', ')}.\n`);
    return 153;
  }
  const outDir = path.resolve(values.out ?? path.join(REPO_ROOT, 'bench', 'results'));
  const kvm = detectKvmHost();
  if (kvm.kind === 'none') {
    process.stderr.write(`sparkler bench: ${kvm.summary}\n`);
    return 1;
  }
  const qemu = findQemu();
  const started = Date.now();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-bench-'));
  const ctx: BenchContext = {
    quick: values.quick === true,
    bin: path.join(REPO_ROOT, 'bin', 'sparkler'),
    qemu,
    work,
    localKvm: kvm.kind === 'pvm' ? "this machine's /dev/kvm (PVM)" : "this machine's /dev/kvm",
    progress: log,
    problems: [],
    experiments: [],
    bootConfigs: values['boot-configs'] ? values['boot-configs'].split(',').map((x) => x.trim()) : undefined,
  };
  const badConfig = ctx.bootConfigs?.find((c) => !/^(on|off)-[12]$/.test(c));
  if (badConfig !== undefined) {
    process.stderr.write(`sparkler bench: unknown boot configuration "${badConfig}"; use off-1, off-2, on-1 or on-2.\n`);
    return 153;
  }
  if (!qemu) ctx.problems.push('qemu-system-x86_64 is not installed (apt-get install qemu-system-x86): the QEMU columns are null.');
  const loadBefore = os.loadavg();
  log(`${ctx.quick ? 'quick' : 'full'} run: ${only.join(', ')}; ${os.cpus().length} CPUs, load ${loadBefore.map((x) => x.toFixed(1)).join(' ')}; results in ${outDir}`);

  if (!values['no-experiments']) {
    try {
      ctx.experiments = await prepareExperiments(ctx);
    } catch (err) {
      ctx.problems.push(`the start-up experiments could not be prepared: ${(err as Error).message}`);
    }
  }
  const entries: BenchEntry[] = [];
  const suites: Record<Suite, () => Promise<BenchEntry[]>> = {
    boot: async () => (await runBootSuite(ctx)).entries,
    memory: () => memorySuite(ctx),
    startup: () => startupSuite(ctx),
    create: () => createSuite(ctx),
    exits: () => exitSuite(ctx),
    net: () => netSuite(ctx),
  };
  try {
    for (const name of only as Suite[]) {
      const t = Date.now();
      log(`suite ${name}`);
      try {
        entries.push(...(await suites[name]()));
      } catch (err) {
        ctx.problems.push(`suite ${name} failed: ${(err as Error).message}`);
        log(`suite ${name} failed: ${(err as Error).message}`);
      }
      log(`suite ${name} done in ${((Date.now() - t) / 1000).toFixed(0)} s`);
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }

  const ordered = orderEntries(entries);
  const info: RunInfo = {
    date: new Date(started).toISOString(),
    mode: ctx.quick ? 'quick' : 'full',
    durationS: (Date.now() - started) / 1000,
    host: os.hostname(),
    kvm: kvm.summary,
    cpus: os.cpus().length,
    loadBefore,
    loadAfter: os.loadavg(),
    node: process.version,
    qemu: qemu ? qemuVersion(qemu) : null,
    kernel: kernelRelease(),
    problems: ctx.problems,
    commit: gitCommit(),
  };
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'latest.json'), `${JSON.stringify(ordered, null, 2)}\n`);
  fs.writeFileSync(path.join(outDir, 'run.json'), `${JSON.stringify(info, null, 2)}\n`);
  const chartRows = ordered.filter((e) => e.headline || CHART_DETAILS.some((re) => re.test(e.name)));
  fs.writeFileSync(path.join(outDir, 'chart.svg'), chartSvg(chartRows, `Sparkler beside QEMU microvm (${info.mode} run, ${info.date.slice(0, 16)})`));
  fs.writeFileSync(path.join(outDir, 'report.md'), markdownReport(ordered, info, 'chart.svg'));
  log(`wrote ${path.join(outDir, 'latest.json')}, report.md and chart.svg in ${info.durationS.toFixed(0)} s`);
  for (const e of ordered.filter((x) => x.headline)) {
    const peer = e.against === 'c_floor' ? e.floor : e.qemu;
    log(`${e.name}: Sparkler ${e.sparkler?.median ?? '-'} ${e.unit}, ${e.against === 'c_floor' ? 'C floor' : 'QEMU'} ${peer?.median ?? '-'}, ratio ${e.ratio ?? '-'}`);
  }
  if (ctx.problems.length > 0) log(`${ctx.problems.length} problem(s); see report.md`);
  return 0;
}
