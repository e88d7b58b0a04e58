/**
 * The soak itself, run where Linux guests boot (inside the emulated KVM host on a PVM machine;
 * `sparkler soak` starts it): N microVMs (SDK, the agent initrd, a scratch drive each) for M
 * minutes. Each VM's worker loops: 64 KiB written to its drive with fsync and read back past the
 * page cache (compared), then 64 KiB echoed over a host-initiated vsock connection (compared),
 * then 256 KiB each way over TCP between the guest and the host on the VM's own TAP (SHA-256
 * compared, network.ts). A few VMs (every third, from vm1, at most SNAPSHOT_VMS) are
 * snapshotted once early in the run: paused, snapshotted, killed, and loaded in a fresh process
 * with their vsock on a new socket and their interface on a new TAP (network_overrides); their
 * next iteration must pass like any other.
 * Meanwhile one client hammers the APIs (GET /, GET /machine-config, PATCH /drives rate limiter
 * on and off, FlushMetrics, pause/resume). VMM memory, fds and threads are sampled at the start
 * and the end; API round trips are the event loop's responsiveness seen from outside (no
 * Sparkler-only endpoint needed). Writes a JSON report to argv[2].
 *
 *   node dist/soak/driver.js REPORT VMS MINUTES KERNEL INITRD
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { dialVsock, MicroVM } from '../sdk';
import { ProcessSample, Reservoir, sampleProcess } from './probes';
import { deleteTap, guestIteration, guestIp, guestMac, guestSetup, HostPeer, makeTap, NET_BYTES, tapMac } from './network';
import { violations } from '../testing/fc-metrics-schema';
import { ConsoleLog, explainExit } from './console-log';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const ECHO_PORT = 5000;
const BLOCK_BYTES = 64 * 1024;
/** A worker iteration slower than this counts as a guest-visible stall (TCG guests are slow). */
const STALL_MS = 10_000;
const SNAPSHOT_VMS = 3;
/** When into the run the chosen VMs are snapshotted (before the warm-up's memory sample). */
const SNAPSHOT_AFTER_MS = 15_000;
/** Set when the warm-up's start samples are taken; a VM restored after that is sampled after its first iteration. */
let warmedUp = false;

interface VmState {
  name: string;
  index: number;
  dir: string;
  tap: string;
  vm: MicroVM;
  pid: number;
  iterations: number;
  iteration: Reservoir;
  stalls: number;
  paused: boolean;
  /** One metrics file per process (the restored process writes its own). */
  metricsPaths: string[];
  snapshotDue: boolean;
  /** While the process is being swapped: the hammer leaves the VM alone. */
  swapping: boolean;
  inFlight: number;
  snapshot?: { pauseCreateMs: number; restoreMs: number; nextIterationOk?: boolean };
  start?: ProcessSample;
  end?: ProcessSample;
  exited?: string;
  /** Its console and VMM log (console.log in its work dir), across its processes. */
  log: ConsoleLog;
}

class Errors {
  readonly byKind = new Map<string, { count: number; first: string }>();
  add(kind: string, err: unknown): void {
    const e = this.byKind.get(kind) ?? { count: 0, first: String((err as Error)?.message ?? err).slice(0, 300) };
    e.count++;
    this.byKind.set(kind, e);
  }
  total(): number {
    let n = 0;
    for (const e of this.byKind.values()) n += e.count;
    return n;
  }
  toJson(): Record<string, { count: number; first: string }> {
    return Object.fromEntries(this.byKind);
  }
}

async function echo(uds: string, blob: Buffer): Promise<Buffer> {
  const { socket, head } = await dialVsock(uds, ECHO_PORT);
  const parts = [head];
  let n = head.length;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('vsock echo timed out after 60 s')); }, 60_000);
    const done = () => { clearTimeout(timer); socket.destroy(); resolve(Buffer.concat(parts)); };
    socket.on('data', (d: Buffer) => { parts.push(d); n += d.length; if (n >= blob.length) done(); });
    socket.on('error', (e) => { clearTimeout(timer); reject(e); });
    socket.on('close', done);
    socket.write(blob);
  });
}

/** The whole log of a VM that ended on its own, kept beside the report (the work dir is removed at the end). */
function keepLog(report: string, name: string, log: ConsoleLog): string {
  const kept = `${report.replace(/\.json$/, '')}-${name}-console.log`;
  fs.copyFileSync(log.file, kept);
  return kept;
}

function watchExit(s: VmState, vm: MicroVM): void {
  vm.on('exit', (code, signal) => { if (s.vm === vm && !s.swapping) s.exited = `code ${code} signal ${signal}`; });
}

/** Pause, snapshot, SIGKILL, load in a fresh process on a new TAP and vsock socket, resume. */
async function snapshotAndRestore(s: VmState, errors: Errors): Promise<void> {
  s.swapping = true;
  let output = '';
  try {
    while (s.paused || s.inFlight > 0) await new Promise((r) => setTimeout(r, 50));
    const snap = path.join(s.dir, 'vm.snap');
    const mem = path.join(s.dir, 'vm.mem');
    const t0 = performance.now();
    await s.vm.snapshot(snap, mem);
    const pauseCreateMs = performance.now() - t0;
    s.vm.process.kill('SIGKILL');
    await s.vm.stop();
    s.log.mark('snapshot taken, old process killed; the restored process follows');
    // The interface moves to a new TAP with the same host address (the old one goes away).
    const mac = tapMac(s.tap);
    deleteTap(s.tap);
    s.tap = `spkr${s.index}`;
    makeTap(s.tap, s.index, mac);
    const metricsPath = path.join(s.dir, `metrics-${s.metricsPaths.length}.ndjson`);
    // Its own folder: no socket path shared with the killed process.
    const workDir = fs.mkdtempSync(path.join(s.dir, 'restored-'));
    const t1 = performance.now();
    const vm = await MicroVM.restore({
      snapshotPath: snap, memFilePath: mem, workDir, metricsPath, timeoutMs: 300_000, networkOverrides: [{ iface_id: 'eth0', host_dev_name: s.tap }],
      onConsole: (c) => { output = (output + c.toString()).slice(-1500); s.log.write(c); },
    });
    s.snapshot = { pauseCreateMs, restoreMs: performance.now() - t1 };
    s.metricsPaths.push(metricsPath);
    s.vm = vm;
    s.pid = vm.process.pid!;
    watchExit(s, vm);
    fs.rmSync(snap, { force: true });
    fs.rmSync(mem, { force: true }); // the restored process maps it; its pages live on until it ends
  } catch (err) {
    errors.add('snapshot-restore', `${s.name}: ${(err as Error).message}; the new process printed: ${output.slice(-600)}`);
    s.exited = 'lost in the snapshot/restore';
  } finally {
    s.swapping = false;
  }
}

async function worker(s: VmState, until: number, errors: Errors, peer: HostPeer): Promise<void> {
  let slot = 0;
  const runStart = Date.now();
  while (Date.now() < until && !s.exited) {
    if (s.snapshotDue && Date.now() - runStart >= SNAPSHOT_AFTER_MS) {
      s.snapshotDue = false;
      await snapshotAndRestore(s, errors);
      if (s.exited) return;
    }
    const t0 = performance.now();
    const errorsBefore = errors.total();
    try {
      const data = randomBytes(BLOCK_BYTES);
      const seek = (slot++ % 64) * 16; // 4 KiB blocks: 64 slots of 64 KiB in the 4 MiB drive
      await s.vm.writeFile('/tmp/blk.in', data);
      const r = await s.vm.exec(['sh', '-c', `dd if=/tmp/blk.in of=/dev/vda bs=4096 seek=${seek} conv=fsync,notrunc 2>/dev/null && dd if=/dev/vda bs=4096 skip=${seek} count=16 iflag=direct 2>/dev/null | sha256sum`]);
      if (r.exitCode !== 0 || !r.stdout.toString().startsWith(sha(data))) errors.add('block-readback-mismatch', `${s.name}: exit ${r.exitCode}, ${r.stdout.toString().slice(0, 80)} ${r.stderr.toString().slice(0, 200)}`);
      const blob = randomBytes(BLOCK_BYTES);
      const back = await echo(s.vm.vsockPath, blob);
      if (sha(back) !== sha(blob)) errors.add('vsock-echo-mismatch', `${s.name}: ${back.length} bytes back of ${blob.length}`);
      const up = randomBytes(NET_BYTES);
      const down = randomBytes(NET_BYTES);
      const ip = guestIp(s.index);
      peer.uploaded.delete(ip);
      peer.nextDownload.set(ip, down);
      await s.vm.writeFile('/tmp/net.up', up);
      const n = await s.vm.exec(['sh', '-c', guestIteration(s.index)]);
      if (peer.uploaded.get(ip) !== sha(up)) errors.add('net-upload-mismatch', `${s.name}: host got ${peer.uploaded.get(ip) ?? 'nothing'}; nc exit ${n.exitCode} ${n.stderr.toString().slice(0, 200)}`);
      if (!n.stdout.toString().startsWith(sha(down))) errors.add('net-download-mismatch', `${s.name}: exit ${n.exitCode}, ${n.stdout.toString().slice(0, 80)} ${n.stderr.toString().slice(0, 200)}`);
    } catch (err) {
      if (s.exited) return;
      errors.add('worker', `${s.name}: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    if (s.snapshot && s.snapshot.nextIterationOk === undefined) {
      s.snapshot.nextIterationOk = errors.total() === errorsBefore;
      if (warmedUp && !s.start) s.start = sampleProcess(s.pid);
    }
    const ms = performance.now() - t0;
    s.iteration.add(ms);
    if (ms > STALL_MS) s.stalls++;
    s.iterations++;
  }
}

/** One client, `concurrency` requests in flight, round-robin over the VMs. */
async function hammer(vms: VmState[], until: number, errors: Errors, api: Record<string, Reservoir>): Promise<number> {
  let n = 0;
  const timed = async (kind: string, call: () => Promise<unknown>) => {
    const t0 = performance.now();
    try {
      await call();
    } catch (err) {
      errors.add(`api-${kind}`, err);
    }
    (api[kind] ??= new Reservoir()).add(performance.now() - t0);
    n++;
  };
  const lane = async (lane: number) => {
    for (let i = lane; Date.now() < until; i++) {
      const s = vms[i % vms.length];
      if (s.exited || s.swapping) { await new Promise((r) => setImmediate(r)); continue; }
      const c = s.vm.api;
      s.inFlight++;
      switch (i % 8) {
        case 0: case 1: case 2: await timed('get_instance', () => c.describeInstance()); break;
        case 3: await timed('get_machine_config', () => c.getMachineConfig()); break;
        case 4: await timed('patch_drive_limiter', () => c.patchDrive({ drive_id: 'scratch', rate_limiter: i % 16 < 8 ? { bandwidth: { size: 32 << 20, refill_time: 100 } } : {} })); break;
        case 5: await timed('get_vm_config', () => c.getVmConfig()); break;
        case 6: await timed('get_version', () => c.getVersion()); break;
        case 7:
          if (i % 64 === 7 && !s.paused && !s.swapping) {
            s.paused = true;
            await timed('pause', () => c.pause());
            await new Promise((r) => setTimeout(r, 100));
            await timed('resume', () => c.resume());
            s.paused = false;
          } else {
            await timed('flush_metrics', () => c.flushMetrics());
          }
          break;
      }
      s.inFlight--;
    }
  };
  await Promise.all([0, 1, 2, 3].map(lane));
  return n;
}

async function main(): Promise<void> {
  const [file, vmsArg, minutesArg, kernel, initrd] = process.argv.slice(2);
  const count = Number(vmsArg);
  const minutes = Number(minutesArg);
  const report: Record<string, unknown> = { vms: count, minutes, cpus: os.cpus().length, memTotalMiB: Math.round(os.totalmem() / 1048576) };
  const save = () => fs.writeFileSync(file, JSON.stringify(report, null, 1));
  const errors = new Errors();
  const work = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'sparkler-soak-'));
  const vms: VmState[] = [];
  const taps = new Set<string>();
  const peer = new HostPeer();
  /** VMs that ended on their own (at boot or mid-run): Sparkler's stop line and the guest's reason from its console. */
  const unexpected: Record<string, unknown>[] = [];
  report.unexpectedExits = unexpected;
  try {
    await peer.listen();
    const t0 = performance.now();
    // Boot in waves of 4: a TCG host booting all at once starves the agents' first answers.
    for (let at = 0; at < count; at += 4) {
      await Promise.all(Array.from({ length: Math.min(4, count - at) }, async (_, k) => {
        const name = `vm${at + k}`;
        const dir = fs.mkdtempSync(path.join(work, `${name}-`));
        const drive = path.join(dir, 'scratch.img');
        fs.writeFileSync(drive, Buffer.alloc(4 << 20));
        const metricsPath = path.join(dir, 'metrics.ndjson');
        const index = at + k;
        const tap = `spks${index}`;
        const log = new ConsoleLog(path.join(dir, 'console.log'));
        try {
          makeTap(tap, index);
          taps.add(tap);
          taps.add(`spkr${index}`);
          const vm = await MicroVM.start({
            kernel, initrd, vcpus: 1, memMiB: 96, workDir: dir, timeoutMs: 300_000, metricsPath, onConsole: log.write,
            drives: [{ drive_id: 'scratch', path_on_host: drive, is_root_device: false, is_read_only: false, cache_type: 'Writeback' }],
            networkInterfaces: [{ iface_id: 'eth0', host_dev_name: tap, guest_mac: guestMac(index) }],
          });
          const s: VmState = {
            name, index, dir, tap, vm, pid: vm.process.pid!, iterations: 0, iteration: new Reservoir(), stalls: 0, paused: false,
            metricsPaths: [metricsPath], snapshotDue: index % 3 === 1 && index < 3 * SNAPSHOT_VMS, swapping: false, inFlight: 0, log,
          };
          watchExit(s, vm);
          await vm.exec(['sh', '-c', `/sbin/sparkler-agent -e -p ${ECHO_PORT} </dev/null >/dev/null 2>&1 &`]);
          const up = await vm.exec(['sh', '-c', guestSetup(index)]);
          if (up.exitCode !== 0) throw new Error(`eth0 set-up failed: ${up.stderr.toString().slice(0, 200)}`);
          vms.push(s);
        } catch (err) {
          errors.add('boot', `${name}: ${(err as Error).message}`);
          await new Promise((r) => setTimeout(r, 500)); // the last output after the exit
          unexpected.push({ name, when: 'boot', ...explainExit(log.tail()), consoleTail: log.tail(1500), log: keepLog(file, name, log) });
        }
      }));
    }
    report.bootSeconds = (performance.now() - t0) / 1000;
    report.booted = vms.length;
    const until = Date.now() + minutes * 60_000;
    // The start sample comes after a warm-up (a fifth of the run, at most a minute): keep-alive API
    // connections, the agent's connections and first-touch allocations are in place by then, so
    // the start-to-end difference is drift, not set-up.
    // Snapshotted VMs are sampled once their new process is up (a restore still pending then is sampled when it ends).
    const warmup = setTimeout(() => { warmedUp = true; for (const s of vms) if (!s.snapshotDue && !s.swapping) s.start = sampleProcess(s.pid); }, Math.min(60_000, minutes * 12_000));
    const api: Record<string, Reservoir> = {};
    const [requests] = await Promise.all([hammer(vms, until, errors, api), ...vms.map((s) => worker(s, until, errors, peer).then(() => {}))]);
    clearTimeout(warmup);
    for (const s of vms) s.end = sampleProcess(s.pid);
    report.apiRequests = requests;
    report.apiRequestsPerSecond = requests / (minutes * 60);
    report.apiLatencyMs = Object.fromEntries(Object.entries(api).map(([k, r]) => [k, r.summary()]));
    report.perVm = vms.map((s) => ({ name: s.name, iterations: s.iterations, iterationMs: s.iteration.summary(), stalls: s.stalls, exited: s.exited, snapshot: s.snapshot, start: s.start, end: s.end }));
    report.snapshots = vms.filter((s) => s.snapshot).map((s) => ({ name: s.name, ...s.snapshot }));
    report.netBytesPerIteration = 2 * NET_BYTES;
    const all = new Reservoir();
    for (const s of vms) for (const v of s.iteration.values) all.add(v);
    report.iterationMs = all.summary();
    report.stalls = vms.reduce((n, s) => n + s.stalls, 0);
    report.vmmExited = vms.filter((s) => s.exited).map((s) => `${s.name}: ${s.exited}`);
    for (const s of vms) if (s.exited) {
      unexpected.push({ name: s.name, when: 'mid-run', ...explainExit(s.log.tail()), consoleTail: s.log.tail(1500), log: keepLog(file, s.name, s.log) });
    }
    // Every metrics line each VMM wrote (boot, flushes) must validate against Firecracker's schema.
    let metricsLines = 0;
    for (const s of vms) for (const metricsPath of s.metricsPaths) {
      const lines = fs.readFileSync(metricsPath, 'utf8').split('\n').filter(Boolean);
      metricsLines += lines.length;
      for (const l of lines) {
        const bad = violations(JSON.parse(l));
        if (bad.length) errors.add('metrics-schema', `${s.name}: ${bad.slice(0, 5).join('; ')}`);
      }
    }
    report.metricsLines = metricsLines;
    const drift = (k: keyof ProcessSample) => vms.filter((s) => s.start && s.end).map((s) => s.end![k] - s.start![k]);
    report.drift = { rssKiB: drift('rssKiB'), privateKiB: drift('privateKiB'), fds: drift('fds'), threads: drift('threads') };
  } catch (err) {
    report.error = (err as Error).stack ?? String(err);
  } finally {
    report.errors = errors.toJson();
    save();
    await Promise.all(vms.map((s) => s.vm.stop().catch(() => {})));
    peer.close();
    for (const t of taps) deleteTap(t);
    fs.rmSync(work, { recursive: true, force: true });
    save();
  }
}

void main();
