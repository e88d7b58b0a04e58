/**
 * End-to-end harness: boots real Linux guests with bin/sparkler where /dev/kvm can run them at
 * speed. On a host with hardware KVM that is here; on a PVM host (or one without KVM) it is the
 * emulated KVM host, where a batch of boots shares one start-up of the emulated host.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { detectKvmHost } from '../host/kvm-host';
import { tempDir } from '../testing/temp-dir';

export const BIN = path.resolve(__dirname, '..', '..', 'bin', 'sparkler');

export interface Boot {
  name: string;
  args: string[];
}

export interface BootResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Why end-to-end boots cannot run here, or undefined. */
export function e2eUnavailableReason(): string | undefined {
  const host = detectKvmHost();
  if (host.kind === 'hardware') return undefined;
  const qemu = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { encoding: 'utf8' });
  if (qemu.status !== 0) return `${host.summary} and qemu-system-x86_64 is missing for the emulated KVM host (apt-get install qemu-system-x86)`;
  return undefined;
}

export function where(): string {
  return detectKvmHost().kind === 'hardware' ? 'local hardware KVM' : 'the emulated KVM host';
}

/** Runs every boot (sequentially) and returns each one's exit code and output. */
export async function runBoots(boots: Boot[], timeoutMs = 15 * 60_000): Promise<Map<string, BootResult>> {
  const dir = tempDir('sparkler-e2e-');
  const lines = ['#!/bin/sh'];
  for (const b of boots) {
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const out = path.join(dir, b.name);
    lines.push(`${[BIN, ...b.args].map(q).join(' ')} >${q(`${out}.out`)} 2>${q(`${out}.err`)} </dev/null &`, 'pid=$!', hangDumpLine('pid', `${out}.hang`));
    lines.push(`wait $pid; echo $? >${q(`${out}.code`)}; kill $hang 2>/dev/null`);
  }
  const script = path.join(dir, 'boots.sh');
  fs.writeFileSync(script, `${lines.join('\n')}\n`, { mode: 0o755 });
  if (detectKvmHost().kind === 'hardware') {
    spawnSync('sh', [script], { stdio: 'inherit', timeout: timeoutMs });
  } else {
    const { runInEmuHost } = await import('../emuhost');
    const r = await runInEmuHost(['sh', script], {
      stdio: 'pipe', timeoutMs, retriesIfWedged: 3, attemptTimeoutMs: Math.min(timeoutMs / 2, 4 * 60_000), faultedIf: () => tripleFaultIn(dir), beforeRetry: () => archiveAttempt(dir),
    });
    if (r.code !== 0) throw new Error(`The emulated KVM host run failed with code ${r.code}: ${r.stderr ?? ''}${r.stdout ?? ''}`);
  }
  const results = new Map<string, BootResult>();
  for (const b of boots) {
    const read = (ext: string) => {
      try {
        return fs.readFileSync(path.join(dir, `${b.name}.${ext}`), 'utf8');
      } catch {
        return '';
      }
    };
    results.set(b.name, { code: Number(read('code').trim() || 'NaN'), stdout: read('out'), stderr: read('err') });
  }
  return results;
}

/**
 * A guest that triple-faulted inside the emulated KVM host, in one of the .out files in `dir`:
 * seen in a few CI runs (2-vCPU boots, at random points of early boot, never reproduced when
 * rerun), so taken for a fault of the nested-SVM emulation and rerun once (runInEmuHost
 * faultedIf); a VMM that triple-faults its guest every time still fails the test.
 */
export function tripleFaultIn(dir: string, files: (name: string) => boolean = (n) => n.endsWith('.out')): string | undefined {
  for (const name of fs.readdirSync(dir).filter(files)) {
    if (fs.readFileSync(path.join(dir, name), 'utf8').includes('Vmm is stopping (guest triple-fault)')) return `a guest triple-faulted in the emulated host (${name})`;
  }
  return undefined;
}

/**
 * A shell line that, if the process `$pidVar` still runs after `seconds`, writes each of its
 * threads' name, state, kernel wait channel, syscall and kernel stack to `file`: what
 * archiveAttempt shows of a boot that stalled, since the attempt is killed from outside.
 * The watcher's pid is in $hang: `kill $hang` once the process has ended.
 */
export function hangDumpLine(pidVar: string, file: string, seconds = 150): string {
  const q = `'${file.replace(/'/g, `'\\''`)}'`;
  return `(sleep ${seconds}; kill -0 $${pidVar} 2>/dev/null && for t in /proc/$${pidVar}/task/*; do `
    + `echo "thread $(cat $t/comm) state $(cut -d' ' -f3 $t/stat) wchan $(cat $t/wchan) syscall $(cut -d' ' -f1-3 $t/syscall)"; cat $t/stack; done >${q} 2>&1) & hang=$!`;
}

/** What a boot of a batch leaves in its folder (runBoots, the virtio and net e2e): NAME.EXT. */
const BOOT_FILE = /\.(out|err|code|then|hang)$/;

/**
 * Before a rerun of a batch of boots (runInEmuHost beforeRetry): moves what the dropped attempt
 * left in `dir` (each boot's .out, .err, .code and .hang) to `dir`/attempt-N/, and says which
 * boots had not finished or triple-faulted, with the last lines of their consoles, so that a CI
 * log shows where an attempt stalled. A rerun then starts from clean files.
 */
export function archiveAttempt(dir: string, isBootFile: (name: string) => boolean = (n) => BOOT_FILE.test(n)): string {
  let n = 1;
  while (fs.existsSync(path.join(dir, `attempt-${n}`))) n++;
  const archive = path.join(dir, `attempt-${n}`);
  fs.mkdirSync(archive);
  const names = fs.readdirSync(dir).filter(isBootFile);
  for (const name of names) fs.renameSync(path.join(dir, name), path.join(archive, name));
  const read = (name: string) => (fs.existsSync(path.join(archive, name)) ? fs.readFileSync(path.join(archive, name), 'utf8') : undefined);
  const lines: string[] = [];
  for (const out of names.filter((x) => x.endsWith('.out')).sort()) {
    const boot = out.slice(0, -'.out'.length);
    const console = read(out) ?? '';
    const faulted = console.includes('Vmm is stopping (guest triple-fault)');
    if (read(`${boot}.code`) !== undefined && !faulted) continue;
    const tail = `${console}\n${read(`${boot}.err`) ?? ''}\n${read(`${boot}.hang`) ?? ''}`.split('\n').filter((l) => l.trim() !== '').slice(-15);
    lines.push(`emuhost: boot "${boot}" ${faulted ? 'triple-faulted' : 'had not finished'}; its last lines:`, ...tail.map((l) => `  | ${l}`));
  }
  // Other files (a driver's report) say where a guest triple-faulted, if one did.
  for (const name of names.filter((x) => !BOOT_FILE.test(x)).sort()) {
    const text = read(name) ?? '';
    const at = text.indexOf('triple-fault');
    if (at < 0) continue;
    const around = text.slice(Math.max(0, at - 1500), at + 300).split(/\\n|\n/).filter((l) => l.trim() !== '').slice(-12);
    lines.push(`emuhost: ${name} shows a triple fault; around it:`, ...around.map((l) => `  | ${l}`));
  }
  lines.push(`emuhost: the attempt's files are in ${archive}`);
  return lines.join('\n');
}

/**
 * A driver's report in which a scenario gave up on a guest that stopped making progress
 * (`"stalled": true`, set by the driver's own time limit): said as a fault of the emulated
 * host's, to rerun the attempt, with the guest's last console line so the log shows where.
 */
export function stalledIn(reportFile: string): string | undefined {
  let report: Record<string, { stalled?: boolean; outputs?: string[] }>;
  try {
    report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as typeof report;
  } catch {
    return undefined;
  }
  for (const [name, part] of Object.entries(report)) {
    if (part?.stalled !== true) continue;
    const last = (part.outputs ?? []).map((o) => o.trim().split('\n').pop() ?? '').filter((l) => l !== '').join(' / ');
    return `a guest in the ${name} scenario stopped making progress (last output: ${last || 'none'})`;
  }
  return undefined;
}

export interface ReportDriverOptions {
  /** The temp folder's prefix: sparkler-e2e-<name>-. */
  name: string;
  /** The whole run in the emulated host, retries included. */
  timeoutMs: number;
  /** One start of the emulated host (several times the normal run). */
  attemptTimeoutMs: number;
  /** The run directly on a hardware-KVM host. */
  hardwareTimeoutMs: number;
}

/**
 * Runs an e2e driver, `node DRIVER report.json ...args`, which writes what it saw to report.json:
 * directly on a hardware-KVM host, else in the emulated KVM host, started again (up to three times)
 * when that host wedges or dies or a guest triple-faults in it (`faultedIf`, runInEmuHost).
 * Returns the parsed report.
 */
export async function runReportDriver<T>(driver: string, args: string[], opts: ReportDriverOptions): Promise<T> {
  const file = path.join(tempDir(`sparkler-e2e-${opts.name}-`), 'report.json');
  const argv = [process.execPath, driver, file, ...args];
  if (detectKvmHost().kind === 'hardware') {
    spawnSync(argv[0], argv.slice(1), { stdio: 'inherit', timeout: opts.hardwareTimeoutMs });
  } else {
    const { runInEmuHost } = await import('../emuhost');
    const r = await runInEmuHost(argv, {
      stdio: 'pipe', timeoutMs: opts.timeoutMs, retriesIfWedged: 3, attemptTimeoutMs: opts.attemptTimeoutMs,
      faultedIf: () => tripleFaultIn(path.dirname(file), (n) => n === 'report.json') ?? stalledIn(file),
      beforeRetry: () => archiveAttempt(path.dirname(file), (n) => n === 'report.json'),
    });
    if (r.code !== 0) throw new Error(`The emulated KVM host run failed with code ${r.code}: ${r.stderr ?? ''}${r.stdout ?? ''}`);
  }
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

export function writeVmConfig(config: object): string {
  const dir = tempDir('sparkler-e2e-vm-');
  const file = path.join(dir, 'vm.json');
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}
