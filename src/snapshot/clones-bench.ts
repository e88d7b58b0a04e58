/**
 * `sparkler snapshot clones [--count N]`: N Sparkler processes restore one snapshot of a tiny
 * guest on this machine's /dev/kvm (File backend), and we measure what Firecracker's snapshot
 * users care about:
 * - wall time until every clone runs: from spawning the processes, and from the first
 *   PUT /snapshot/load (processes already up, as a pool of warm VMMs would be);
 * - restore latency per clone: PUT /snapshot/load received -> vCPUs started, as each VMM logs it
 *   ("Snapshot loaded in X ms"), median and p95, and the client's round trip;
 * - private memory per clone (Private_Dirty + Private_Clean of /proc/PID/smaps_rollup) against an
 *   idle freshly booted VM's (the snapshot's source, paused, the same way measured).
 *
 * The guest spins on a flag byte in its memory; the snapshot is taken while it spins with the
 * flag clear, then the flag is set in the memory file. A restored clone therefore prints "<R>"
 * on its serial port as its first act (proof that it runs) and halts: running clones cost no CPU
 * while the later ones start.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { httpUnix, killAndWait, Spawned, spawnTimed, vmmEnv, waitForSocket } from '../bench/proc';
import { tinyKernel } from '../testing/tiny-guests';
import { readSnapshot } from './restore';

/**
 * mov $0x3f8,%dx; mov $0x201000,%ebx; 1: cmpb $0,(%rbx); je 1b;
 * mov $'<',%al; out; mov $'R',%al; out; mov $'>',%al; out; 2: hlt; jmp 2b
 */
export const FLAG_THEN_HALT_GUEST = Buffer.from('66baf803' + 'bb00102000' + '803b00' + '74fb' + 'b03cee' + 'b052ee' + 'b03eee' + 'f4ebfd', 'hex');
export const FLAG_ADDRESS = 0x201000;
const RUNNING_MARK = '<R>';
const MEM_MIB = 128;

export interface ClonesResult {
  count: number;
  memMib: number;
  /** Spawning the first process -> every clone printed its mark. */
  spawnToAllRunningMs: number;
  /** Every API socket accepting (ms after the first spawn). */
  allApisReadyMs: number;
  /** First PUT /snapshot/load sent -> every clone printed its mark. */
  firstLoadToAllRunningMs: number;
  /** The VMM's "Snapshot loaded in" figures (PUT received -> vCPUs started), ms. */
  loadMs: Percentiles;
  /** PUT /snapshot/load sent -> its 204 read, ms. */
  loadRoundTripMs: Percentiles;
  /** Private_Dirty + Private_Clean per clone, KiB. */
  clonePrivateKib: Percentiles;
  /** The same for the snapshot's source VM, booted and idle (paused), KiB. */
  idleVmPrivateKib: number;
  /** Median clone private memory / idle VM's. */
  privateRatio: number;
  loadAverage: number[];
}

export interface Percentiles { median: number; p95: number; min: number; max: number }

export function percentiles(xs: readonly number[]): Percentiles {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return { median: NaN, p95: NaN, min: NaN, max: NaN };
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, p95: at(0.95), min: s[0], max: s[s.length - 1] };
}

/** Private_Dirty + Private_Clean (KiB) of a process, from /proc/PID/smaps_rollup. */
export function privateKib(smapsRollup: string): number {
  const field = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(smapsRollup)?.[1] ?? NaN);
  return field('Private_Dirty') + field('Private_Clean');
}

const readPrivateKib = (pid: number) => privateKib(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));

interface Vmm { p: Spawned; sock: string; out: () => string }

function startVmm(bin: string, dir: string, name: string): Vmm {
  const sock = path.join(dir, `${name}.sock`);
  const p = spawnTimed(bin, ['--api-sock', sock, '--level', 'Info'], { env: vmmEnv() });
  let out = '';
  p.child.stdout?.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  return { p, sock, out: () => out + p.stderrTail() };
}

async function put(vmm: Vmm, p: string, body: unknown): Promise<void> {
  const r = await httpUnix(vmm.sock, p === '/vm' ? 'PATCH' : 'PUT', p, body);
  if (r.status !== 204) throw new Error(`${p} answered ${r.status}: ${r.body}`);
}

async function until(cond: () => boolean, what: string, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Boots the source VM, snapshots it while it spins, sets the flag in the memory file. */
async function makeSnapshot(bin: string, dir: string): Promise<{ snapshot: string; mem: string; idleVmPrivateKib: number }> {
  const kernel = path.join(dir, 'flag.elf');
  fs.writeFileSync(kernel, tinyKernel(FLAG_THEN_HALT_GUEST));
  const source = startVmm(bin, dir, 'source');
  try {
    await waitForSocket(source.sock, source.p, 20_000);
    await put(source, '/boot-source', { kernel_image_path: kernel, boot_args: 'console=ttyS0' });
    await put(source, '/machine-config', { vcpu_count: 1, mem_size_mib: MEM_MIB });
    await put(source, '/actions', { action_type: 'InstanceStart' });
    await new Promise((r) => setTimeout(r, 300));
    await put(source, '/vm', { state: 'Paused' });
    const idleVmPrivateKib = readPrivateKib(source.p.child.pid!);
    const snapshot = path.join(dir, 'vm.snap');
    const mem = path.join(dir, 'vm.mem');
    await put(source, '/snapshot/create', { snapshot_type: 'Full', snapshot_path: snapshot, mem_file_path: mem });
    const region = readSnapshot(snapshot).state.memory.regions.find((r) => r.start <= FLAG_ADDRESS && FLAG_ADDRESS < r.start + r.size);
    if (region === undefined) throw new Error(`guest RAM does not cover the flag at 0x${FLAG_ADDRESS.toString(16)}`);
    const fd = fs.openSync(mem, 'r+');
    fs.writeSync(fd, Buffer.from([1]), 0, 1, region.fileOffset + FLAG_ADDRESS - region.start);
    fs.closeSync(fd);
    return { snapshot, mem, idleVmPrivateKib };
  } finally {
    await killAndWait(source.p);
  }
}

export async function runClones(opts: { bin: string; count: number; progress: (line: string) => void }): Promise<ClonesResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-clones-'));
  const clones: Vmm[] = [];
  try {
    const { snapshot, mem, idleVmPrivateKib } = await makeSnapshot(opts.bin, dir);
    opts.progress(`snapshot made (${MEM_MIB} MiB guest); idle booted VM: ${idleVmPrivateKib} KiB private; spawning ${opts.count} processes`);
    // Read the memory file once so that every clone finds its pages in the page cache.
    fs.readFileSync(mem);
    const t0 = performance.now();
    for (let i = 0; i < opts.count; i++) clones.push(startVmm(opts.bin, dir, `clone${i}`));
    await Promise.all(clones.map((c) => waitForSocket(c.sock, c.p, 60_000, 5)));
    const apisReady = performance.now();
    opts.progress(`${opts.count} API sockets ready after ${(apisReady - t0).toFixed(0)} ms; loading`);
    const roundTrips: number[] = [];
    const tLoad = performance.now();
    // One after another: each latency is a restore's own, not a queue behind the others.
    for (const c of clones) {
      const s = performance.now();
      await put(c, '/snapshot/load', { snapshot_path: snapshot, mem_backend: { backend_type: 'File', backend_path: mem }, resume_vm: true });
      roundTrips.push(performance.now() - s);
    }
    await until(() => clones.every((c) => c.out().includes(RUNNING_MARK)), `every clone to print ${RUNNING_MARK}`, 60_000);
    const allRunning = performance.now();
    await until(() => clones.every((c) => /Snapshot loaded in [\d.]+ ms/.test(c.out())), 'every load to be logged', 10_000);
    const loadMs = clones.map((c) => Number(/Snapshot loaded in ([\d.]+) ms/.exec(c.out())![1]));
    const privates = clones.map((c) => readPrivateKib(c.p.child.pid!));
    const clonePrivateKib = percentiles(privates);
    return {
      count: opts.count, memMib: MEM_MIB,
      spawnToAllRunningMs: allRunning - t0, allApisReadyMs: apisReady - t0, firstLoadToAllRunningMs: allRunning - tLoad,
      loadMs: percentiles(loadMs), loadRoundTripMs: percentiles(roundTrips),
      clonePrivateKib, idleVmPrivateKib, privateRatio: clonePrivateKib.median / idleVmPrivateKib, loadAverage: os.loadavg(),
    };
  } finally {
    await Promise.all(clones.map((c) => killAndWait(c.p).catch(() => {})));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const USAGE = 'usage: sparkler snapshot clones [--count N] [--json]\n';

export async function clonesCommand(argv: string[], bin: string): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { count: { type: 'string' }, json: { type: 'boolean' } }, strict: true }));
  } catch (err) {
    process.stderr.write(`sparkler: ${(err as Error).message}\n${USAGE}`);
    return 153;
  }
  const count = Number(values.count ?? 100);
  if (!Number.isInteger(count) || count < 1 || count > 1000) {
    process.stderr.write(`sparkler: --count must be a whole number from 1 to 1000, not ${values.count}.\n`);
    return 153;
  }
  const r = await runClones({ bin, count, progress: (line) => process.stderr.write(`[clones] ${line}\n`) });
  if (values.json) {
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    return 0;
  }
  const f = (x: number) => x.toFixed(1);
  const p = (q: Percentiles, unit: string) => `median ${f(q.median)} ${unit}, p95 ${f(q.p95)} ${unit} (min ${f(q.min)}, max ${f(q.max)})`;
  process.stdout.write([
    `${r.count} clones of one ${r.memMib} MiB tiny-guest snapshot (File backend), load average ${r.loadAverage.map((x) => x.toFixed(1)).join(' ')}`,
    `  spawn -> all running:        ${r.spawnToAllRunningMs.toFixed(0)} ms (all API sockets up at ${r.allApisReadyMs.toFixed(0)} ms)`,
    `  first load -> all running:   ${r.firstLoadToAllRunningMs.toFixed(0)} ms (processes already started)`,
    `  restore (VMM: PUT received -> vCPUs started): ${p(r.loadMs, 'ms')}`,
    `  restore (client round trip): ${p(r.loadRoundTripMs, 'ms')}`,
    `  private memory per clone:    ${p(r.clonePrivateKib, 'KiB')}`,
    `  idle booted VM:              ${r.idleVmPrivateKib} KiB private; clone/idle ${r.privateRatio.toFixed(2)}x`,
    '',
  ].join('\n'));
  return 0;
}
