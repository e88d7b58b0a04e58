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
 * With --pool the N VMMs are instead started by a warm pool (src/pool, the same launch) before
 * the clock starts, and the timed part is claim (rename of the socket) -> PUT /snapshot/load ->
 * all N running: what a platform that keeps VMMs warm pays per request.
 *
 * The guest spins on a flag byte in its memory; the snapshot is taken while it spins with the
 * flag clear, then the flag is set in the memory file. A restored clone therefore prints "<R>"
 * on its serial port as its first act (proof that it runs) and halts: running clones cost no CPU
 * while the later ones start.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChildProcess, spawn as spawnProcess, SpawnOptions } from 'node:child_process';
import { parseArgs } from 'node:util';
import { httpUnix, killAndWait, Spawned, spawnTimed, vmmEnv, waitForSocket } from '../bench/proc';
import { claimVmm } from '../pool/claim';
import { WarmPool } from '../pool/pool';
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

export type ClonesMode = 'fresh' | 'pool';

export interface ClonesResult {
  mode: ClonesMode;
  count: number;
  /** PUT /snapshot/load requests outstanding at once. */
  inFlight: number;
  memMib: number;
  /** Spawning the first process -> every clone printed its mark (fresh); for pool mode the
   *  pool's start-up (not timed per request) + claim -> all running. */
  spawnToAllRunningMs: number;
  /** Every API socket accepting (ms after the first spawn; pool: every VMM idle in the pool). */
  allApisReadyMs: number;
  /** First claim (pool) or first PUT /snapshot/load (fresh) -> every clone printed its mark. */
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

interface Vmm { pid: () => number; sock: string; out: () => string; kill: () => Promise<void> }

/** Wraps a spawned process: collects its stdout (serial console and log) and stderr. */
function asVmm(child: ChildProcess, sock: string, exited: Promise<unknown>): Vmm {
  let out = '';
  child.stdout?.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  child.stderr?.on('data', (d: Buffer) => { out = (out + d.toString('latin1')).slice(-(1 << 20)); });
  return {
    pid: () => child.pid!, sock, out: () => out,
    kill: async () => {
      // The pool unrefs a claimed VMM (it runs on without the pool); wait for it all the same.
      child.ref();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

function startVmm(bin: string, dir: string, name: string): Vmm & { spawned: Spawned } {
  const sock = path.join(dir, `${name}.sock`);
  const p = spawnTimed(bin, ['--api-sock', sock, ...VMM_ARGS], { env: vmmEnv() });
  return { ...asVmm(p.child, sock, p.exited), spawned: p };
}

const VMM_ARGS = ['--level', 'Info'];

/**
 * The pool's own launch (detached, --id), with stdout and stderr piped instead of dropped so
 * that the bench sees each clone's mark and its "Snapshot loaded in" line.
 */
export function pipedPoolSpawn(record: (id: string, child: ChildProcess) => void) {
  return (command: string, args: readonly string[], options: SpawnOptions): ChildProcess => {
    const child = spawnProcess(command, [...args], { ...options, env: vmmEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const id = args[args.indexOf('--id') + 1];
    record(id, child);
    return child;
  };
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
    await waitForSocket(source.sock, source.spawned, 20_000);
    await put(source, '/boot-source', { kernel_image_path: kernel, boot_args: 'console=ttyS0' });
    await put(source, '/machine-config', { vcpu_count: 1, mem_size_mib: MEM_MIB });
    await put(source, '/actions', { action_type: 'InstanceStart' });
    await new Promise((r) => setTimeout(r, 300));
    await put(source, '/vm', { state: 'Paused' });
    const idleVmPrivateKib = readPrivateKib(source.pid());
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
    await killAndWait(source.spawned);
  }
}

export async function runClones(opts: { bin: string; count: number; mode?: ClonesMode; inFlight?: number; progress: (line: string) => void }): Promise<ClonesResult> {
  const mode = opts.mode ?? 'fresh';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-clones-'));
  const clones: Vmm[] = [];
  const children = new Map<string, { child: ChildProcess; exited: Promise<void> }>();
  let pool: WarmPool | undefined;
  try {
    const { snapshot, mem, idleVmPrivateKib } = await makeSnapshot(opts.bin, dir);
    opts.progress(`snapshot made (${MEM_MIB} MiB guest); idle booted VM: ${idleVmPrivateKib} KiB private; ${mode === 'pool' ? 'filling a pool of' : 'spawning'} ${opts.count} processes`);
    // Read the memory file once so that every clone finds its pages in the page cache.
    fs.readFileSync(mem);
    const t0 = performance.now();
    if (mode === 'fresh') {
      for (let i = 0; i < opts.count; i++) clones.push(startVmm(opts.bin, dir, `clone${i}`));
      await Promise.all(clones.map((c) => waitForSocket(c.sock, (c as Vmm & { spawned: Spawned }).spawned, 60_000, 5)));
    } else {
      pool = new WarmPool({
        dir: path.join(dir, 'pool'), size: opts.count, bin: opts.bin, vmmArgs: VMM_ARGS, startTimeoutMs: 60_000,
        spawn: pipedPoolSpawn((id, child) => children.set(id, { child, exited: new Promise((r) => child.on('close', () => r())) })),
      });
      await pool.start();
    }
    const apisReady = performance.now();
    opts.progress(`${opts.count} API sockets ready after ${(apisReady - t0).toFixed(0)} ms; ${mode === 'pool' ? 'claiming and ' : ''}loading`);
    const roundTrips: number[] = [];
    const tLoad = performance.now();
    if (pool) {
      // Every claim is a rename; taken in one synchronous run, so the pool sees them all at its
      // next look and, stopped right after, starts no replacements that would compete for CPU.
      for (let i = 0; i < opts.count; i++) {
        const claimed = claimVmm(path.join(dir, 'pool'));
        const c = children.get(claimed.id)!;
        clones.push(asVmm(c.child, claimed.socketPath, c.exited));
      }
      pool.stop();
    }
    // One after another by default: each latency is a restore's own, not a queue behind the
    // others. --in-flight K keeps K loads outstanding, as a platform serving K requests would.
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < clones.length) {
        const c = clones[next++];
        const s = performance.now();
        await put(c, '/snapshot/load', { snapshot_path: snapshot, mem_backend: { backend_type: 'File', backend_path: mem }, resume_vm: true });
        roundTrips.push(performance.now() - s);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, opts.inFlight ?? 1) }, worker));
    await until(() => clones.every((c) => c.out().includes(RUNNING_MARK)), `every clone to print ${RUNNING_MARK}`, 60_000)
      .catch((err: Error) => { throw new Error(`${err.message}; a clone without it printed: ${clones.find((c) => !c.out().includes(RUNNING_MARK))?.out().slice(-2000)}`); });
    const allRunning = performance.now();
    await until(() => clones.every((c) => /Snapshot loaded in [\d.]+ ms/.test(c.out())), 'every load to be logged', 10_000);
    const loadMs = clones.map((c) => Number(/Snapshot loaded in ([\d.]+) ms/.exec(c.out())![1]));
    const privates = clones.map((c) => readPrivateKib(c.pid()));
    const clonePrivateKib = percentiles(privates);
    return {
      mode, count: opts.count, inFlight: Math.max(1, opts.inFlight ?? 1), memMib: MEM_MIB,
      spawnToAllRunningMs: allRunning - t0, allApisReadyMs: apisReady - t0, firstLoadToAllRunningMs: allRunning - tLoad,
      loadMs: percentiles(loadMs), loadRoundTripMs: percentiles(roundTrips),
      clonePrivateKib, idleVmPrivateKib, privateRatio: clonePrivateKib.median / idleVmPrivateKib, loadAverage: os.loadavg(),
    };
  } finally {
    pool?.stop();
    await Promise.all(clones.map((c) => c.kill().catch(() => {})));
    await Promise.all([...children.values()].map(({ child, exited }) => { child.ref(); child.kill('SIGKILL'); return exited; }));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const USAGE = 'usage: sparkler snapshot clones [--count N] [--pool] [--in-flight K] [--json]\n';

/** The report: one column per mode, so fresh processes and a warm pool read side by side. */
export function formatClones(rs: readonly ClonesResult[]): string {
  const f = (x: number) => x.toFixed(1);
  const p = (q: Percentiles) => `${f(q.median)} / ${f(q.p95)}`;
  const row = (label: string, cell: (r: ClonesResult) => string) => `  ${label.padEnd(44)}${rs.map((r) => cell(r).padStart(20)).join('')}`;
  const head = rs[0];
  return [
    `${head.count} clones of one ${head.memMib} MiB tiny-guest snapshot (File backend), ${head.inFlight} load(s) in flight, load average ${head.loadAverage.map((x) => x.toFixed(1)).join(' ')}`,
    row('', (r) => (r.mode === 'pool' ? 'warm pool' : 'fresh processes')),
    row('processes up (spawn -> all APIs answer), ms', (r) => r.allApisReadyMs.toFixed(0)),
    row('request -> all running, ms', (r) => r.firstLoadToAllRunningMs.toFixed(0)),
    row('  (fresh: first PUT load; pool: first claim)', () => ''),
    row('spawn -> all running, ms', (r) => r.spawnToAllRunningMs.toFixed(0)),
    row('restore in VMM, median / p95 ms', (r) => p(r.loadMs)),
    row('restore round trip, median / p95 ms', (r) => p(r.loadRoundTripMs)),
    row('private memory per clone, median / p95 KiB', (r) => `${r.clonePrivateKib.median.toFixed(0)} / ${r.clonePrivateKib.p95.toFixed(0)}`),
    row('idle booted VM, KiB (clone/idle)', (r) => `${r.idleVmPrivateKib} (${r.privateRatio.toFixed(2)}x)`),
    '',
  ].join('\n');
}

export async function clonesCommand(argv: string[], bin: string): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { count: { type: 'string' }, pool: { type: 'boolean' }, 'in-flight': { type: 'string' }, json: { type: 'boolean' } }, strict: true }));
  } catch (err) {
    process.stderr.write(`sparkler: ${(err as Error).message}\n${USAGE}`);
    return 153;
  }
  const count = Number(values.count ?? 100);
  if (!Number.isInteger(count) || count < 1 || count > 1000) {
    process.stderr.write(`sparkler: --count must be a whole number from 1 to 1000, not ${values.count}.\n`);
    return 153;
  }
  const inFlight = Number(values['in-flight'] ?? 1);
  if (!Number.isInteger(inFlight) || inFlight < 1 || inFlight > count) {
    process.stderr.write(`sparkler: --in-flight must be a whole number from 1 to the count (${count}), not ${values['in-flight']}.\n`);
    return 153;
  }
  // --pool measures both ways, one after the other on the same loaded machine, for a fair pair.
  const modes: ClonesMode[] = values.pool ? ['fresh', 'pool'] : ['fresh'];
  const results: ClonesResult[] = [];
  for (const mode of modes) {
    results.push(await runClones({ bin, count, mode, inFlight, progress: (line) => process.stderr.write(`[clones ${mode}] ${line}\n`) }));
  }
  process.stdout.write(values.json ? `${JSON.stringify(values.pool ? results : results[0], null, 2)}\n` : formatClones(results));
  return 0;
}
