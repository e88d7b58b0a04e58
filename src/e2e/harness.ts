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
    lines.push(`${[BIN, ...b.args].map(q).join(' ')} >${q(`${out}.out`)} 2>${q(`${out}.err`)} </dev/null; echo $? >${q(`${out}.code`)}`);
  }
  const script = path.join(dir, 'boots.sh');
  fs.writeFileSync(script, `${lines.join('\n')}\n`, { mode: 0o755 });
  if (detectKvmHost().kind === 'hardware') {
    spawnSync('sh', [script], { stdio: 'inherit', timeout: timeoutMs });
  } else {
    const { runInEmuHost } = await import('../emuhost');
    const r = await runInEmuHost(['sh', script], { stdio: 'pipe', timeoutMs, retriesIfWedged: 2, attemptTimeoutMs: timeoutMs / 2, faultedIf: () => tripleFaultIn(dir) });
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
 * directly on a hardware-KVM host, else in the emulated KVM host, started again (up to twice)
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
      stdio: 'pipe', timeoutMs: opts.timeoutMs, retriesIfWedged: 2, attemptTimeoutMs: opts.attemptTimeoutMs,
      faultedIf: () => tripleFaultIn(path.dirname(file), (n) => n === 'report.json'),
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
