/**
 * `sparkler soak [--vms N] [--minutes M] [--out FILE]`: N microVMs under load for M minutes
 * (driver.ts), inside the emulated KVM host when this machine's /dev/kvm cannot run Linux guests.
 * Prints the report's headline figures and writes the whole report as JSON (default
 * soak-report.json). See docs/reliability.md. Exits 1 when a VMM died or there were errors.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { SparklerError } from '../errors';
import { detectKvmHost } from '../host/kvm-host';

const USAGE = `Usage: sparkler soak [--vms N] [--minutes M] [--out FILE] [--emuhost-memory MiB]

N microVMs (default 20) for M minutes (default 10), each writing its drive with fsync, echoing
over vsock and moving 256 KiB each way over TCP on its own TAP, while a client hammers their
APIs; three of them are snapshotted and restored in a fresh process early in the run. Writes FILE (default soak-report.json).
`;

function positive(flag: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new SparklerError('EUSAGE', `${flag} needs a positive number; got ${v}.`);
  return n;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { vms: { type: 'string' }, minutes: { type: 'string' }, out: { type: 'string' }, 'emuhost-memory': { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) { process.stdout.write(USAGE); return 0; }
  const vms = Math.floor(positive('--vms', values.vms, 20));
  const minutes = positive('--minutes', values.minutes, 10);
  const out = path.resolve(values.out ?? 'soak-report.json');
  const { ensureInitrd, ensureKernel } = await import('../guest');
  const kernel = await ensureKernel();
  const initrd = await ensureInitrd();
  const argvDriver = [process.execPath, path.join(__dirname, 'driver.js'), out, String(vms), String(minutes), kernel, initrd];
  // Boot waves, the run, and stopping: generous, the emulated host boots slowly.
  const timeoutMs = (minutes * 60 + 240 + vms * 45) * 1000;
  fs.rmSync(out, { force: true });
  process.stderr.write(`[soak] ${vms} VMs for ${minutes} min; report: ${out}\n`);
  if (detectKvmHost().kind === 'hardware') {
    spawnSync(argvDriver[0], argvDriver.slice(1), { stdio: 'inherit', timeout: timeoutMs });
  } else {
    const { runInEmuHost } = await import('../emuhost');
    const memoryMiB = Math.floor(positive('--emuhost-memory', values['emuhost-memory'], Math.max(2048, 512 + vms * 160 + 3 * 128)));
    // The whole soak runs again from scratch if the emulated host wedges (a stall report on its console).
    const r = await runInEmuHost(argvDriver, { stdio: 'inherit', timeoutMs, memoryMiB, writable: [path.dirname(out)], retriesIfWedged: 1, keepGuestFaults: true });
    if (r.code !== 0) process.stderr.write(`[soak] the emulated KVM host run ended with code ${r.code}\n`);
  }
  if (!fs.existsSync(out)) { process.stderr.write('[soak] no report was written\n'); return 1; }
  const report = JSON.parse(fs.readFileSync(out, 'utf8')) as Record<string, unknown>;
  const { perVm: _perVm, ...headline } = report;
  process.stdout.write(`${JSON.stringify(headline, null, 1)}\n`);
  const errors = Object.values((report.errors ?? {}) as Record<string, { count: number }>).reduce((n, e) => n + e.count, 0);
  return report.error || errors > 0 || (report.vmmExited as unknown[] | undefined)?.length ? 1 : 0;
}
