/**
 * Drives a microVM through the SDK where real Linux guests can boot (run by vsock.e2e.test.ts,
 * inside the emulated KVM host on a PVM machine): exec, files, host<->guest vsock both ways,
 * connections closed mid-stream, 50 MiB of streamed stdout, stop(); then a VM from a warm pool
 * (MicroVM.start({ pool })): exec, its console, stop(). Writes a JSON report to
 * argv[2]; argv[3] is the kernel, argv[4] the initrd.
 *
 *   node dist/e2e/vsock-driver.js REPORT KERNEL INITRD
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { WarmPool } from '../pool/pool';
import { MicroVM, dialVsock } from '../sdk';
import { socketDir } from './api-driver';
import { progressReport } from './progress';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const MiB = 1 << 20;

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : -1;
}
function cpuMs(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, 100 Hz ticks
}

/** Sends `blob` on a host-initiated connection to guest `port` and collects as many bytes back. */
async function echoOnce(uds: string, port: number, blob: Buffer): Promise<Buffer> {
  const { socket, head } = await dialVsock(uds, port);
  const parts = [head];
  let n = head.length;
  return new Promise((resolve, reject) => {
    socket.on('data', (d: Buffer) => { parts.push(d); n += d.length; if (n >= blob.length) { socket.destroy(); resolve(Buffer.concat(parts)); } });
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(parts)));
    socket.write(blob);
  });
}

/** A VM from a warm pool of one: claimed, booted, a command run, its console seen, stopped. */
async function pooledVm(kernel: string, initrd: string, workDir: string): Promise<Record<string, unknown>> {
  const dir = path.join(workDir, 'pool');
  const pool = new WarmPool({ dir, size: 1, startTimeoutMs: 60_000 });
  let vm: MicroVM | undefined;
  let consoleText = '';
  try {
    await pool.start();
    const t0 = performance.now();
    vm = await MicroVM.start({ pool: dir, kernel, initrd, vcpus: 1, memMiB: 128, workDir: path.join(workDir, 'pooled'), timeoutMs: 180_000, onConsole: (c) => { consoleText += c.toString(); } });
    const claimToAgentMs = performance.now() - t0;
    const pid = vm.process.pid!;
    const echo = (await vm.exec(['echo', 'pooled'])).stdout.toString();
    await vm.stop();
    // The pool (this process) may not have reaped it yet: a zombie has ended.
    let alive = true;
    try { alive = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8') !== ''; } catch { alive = false; }
    return { poolId: vm.poolId, claimToAgentMs, echo, consoleHasBoot: /Linux version/.test(consoleText), ended: vm.ended, processAlive: alive, claimedLeft: fs.readdirSync(path.join(dir, 'claimed')) };
  } finally {
    await vm?.stop().catch(() => {});
    pool.stop();
  }
}

async function main(): Promise<void> {
  const [file, kernel, initrd] = process.argv.slice(2);
  const report = progressReport<unknown>();
  const save = () => fs.writeFileSync(file, JSON.stringify(report, null, 1));
  const workDir = fs.mkdtempSync(path.join(await socketDir(), 'sparkler-vsock-e2e-'));
  let vm: MicroVM | undefined;
  const consoleOut: Buffer[] = [];
  try {
    const t0 = performance.now();
    vm = await MicroVM.start({ kernel, initrd, vcpus: 2, memMiB: 256, workDir, timeoutMs: 180_000 });
    vm.on('console', (c) => consoleOut.push(c));
    report.startToAgentMs = vm.startToAgentMs;
    report.startCallMs = performance.now() - t0;
    const pid = vm.process.pid!;

    const r = await vm.exec(['sh', '-c', 'uname -r; echo to-stderr >&2; exit 3']);
    report.exec = { exitCode: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };

    const data = randomBytes(4 * MiB);
    await vm.writeFile('/tmp/data.bin', data);
    const back = await vm.readFile('/tmp/data.bin');
    report.files = { same: sha(back) === sha(data), size: back.length, guestSha: (await vm.exec(['sha256sum', '/tmp/data.bin'])).stdout.toString().split(' ')[0], hostSha: sha(data) };

    await vm.exec(['sh', '-c', '/sbin/sparkler-agent -e -p 5000 </dev/null >/dev/null 2>&1 &']);
    // Host -> guest: 32 connections each echo 1 MiB.
    const cpu0 = cpuMs(pid);
    const t1 = performance.now();
    const echoes = await Promise.all(Array.from({ length: 32 }, async () => {
      const blob = randomBytes(MiB);
      const got = await echoOnce(vm!.vsockPath, 5000, blob);
      return sha(got) === sha(blob);
    }));
    const secs = (performance.now() - t1) / 1000;
    report.hostEcho = { ok: echoes.filter(Boolean).length, seconds: secs, mibPerSEachWay: 32 / secs, vmmCpuMsPerGiB: ((cpuMs(pid) - cpu0) / 64) * 1024 };

    // Guest -> host: 16 connections to a host listener on <uds_path>_6000.
    const server = net.createServer((s) => s.pipe(s)).listen(`${vm.vsockPath}_6000`);
    await new Promise((res) => server.once('listening', res));
    const g = await vm.exec(['sh', '-c', [
      'for i in $(seq 16); do (head -c 262144 /dev/urandom >/tmp/in$i; /sbin/sparkler-agent -c 2:6000 </tmp/in$i >/tmp/out$i) & done; wait',
      'ok=0; for i in $(seq 16); do cmp -s /tmp/in$i /tmp/out$i && ok=$((ok+1)); done; echo GUEST-OK=$ok',
    ].join('; ')]);
    server.close();
    report.guestInitiated = { stdout: g.stdout.toString(), stderr: g.stderr.toString().slice(0, 500) };

    await vm.exec(['sh', '-c', '/sbin/sparkler-agent -s -p 5001 </dev/null >/dev/null 2>&1 &']);
    // 1023 connections at once (Firecracker's limit) to a guest that holds them: each is
    // accepted, the next one is closed by the VMM, and once the host closes them a new one works.
    {
      const held: net.Socket[] = [];
      let refused = '';
      const t3 = performance.now();
      try {
        for (let batch = 0; held.length < 1023 && !refused; batch++) {
          const n = Math.min(32, 1023 - held.length);
          const got = await Promise.allSettled(Array.from({ length: n }, () => dialVsock(vm!.vsockPath, 5001, 30_000)));
          for (const g of got) {
            if (g.status === 'fulfilled') { g.value.socket.on('error', () => {}); held.push(g.value.socket); }
            else refused ||= `connection ${held.length + 1}: ${(g.reason as Error).message}`;
          }
        }
        const openedSeconds = (performance.now() - t3) / 1000;
        const extra = await dialVsock(vm.vsockPath, 5001, 30_000).then((d) => { d.socket.destroy(); return 'accepted'; }, (err: Error) => err.message);
        const stateWhileFull = (await vm.api.describeInstance()).state;
        for (const h of held) h.destroy();
        const heldCount = held.length;
        held.length = 0;
        // The guest's sink keeps its ends open: the VMM resets each 2 s after its host socket
        // closed (HOST_GONE_TIMEOUT_MS), and the slots are free again.
        let afterClose = '';
        const deadline = Date.now() + 60_000;
        while (Date.now() < deadline) {
          afterClose = await echoOnce(vm.vsockPath, 5000, Buffer.from('after 1023')).then((b) => b.toString(), (err: Error) => err.message);
          if (afterClose === 'after 1023') break;
          await new Promise((res) => setTimeout(res, 1000));
        }
        report.manyConnections = { held: heldCount, refused, openedSeconds, extra, stateWhileFull, afterClose };
      } finally {
        for (const h of held) h.destroy();
      }
    }

    // A guest that never reads: the host's writes stop at the guest's credit (backpressure on
    // the host socket), the VMM holds no more than a bounded amount, the other connections go on.
    {
      const { socket } = await dialVsock(vm.vsockPath, 5001);
      socket.on('error', () => {});
      const rssBefore = rssKiB(pid);
      const chunk = Buffer.alloc(64 * 1024, 0x77);
      let flushed = 0;
      for (let i = 0; i < 1024; i++) socket.write(chunk, (err) => { if (!err) flushed += chunk.length; });
      await new Promise((res) => setTimeout(res, 3000));
      const after3s = flushed;
      await new Promise((res) => setTimeout(res, 2000));
      const otherEcho = (await echoOnce(vm.vsockPath, 5000, Buffer.from('beside a stuck one'))).toString();
      report.neverReads = { queued: 1024 * chunk.length, acceptedAfter3s: after3s, acceptedAfter5s: flushed, vmmRssGrowthKiB: rssKiB(pid) - rssBefore, otherEcho, state: (await vm.api.describeInstance()).state };
      socket.destroy();
    }

    // 100 host connections closed mid-stream, then the device still works.
    for (let i = 0; i < 100; i++) {
      const { socket } = await dialVsock(vm.vsockPath, 5000);
      socket.write(randomBytes(128 * 1024));
      socket.destroy();
    }
    const after = await echoOnce(vm.vsockPath, 5000, Buffer.from('still alive'));
    report.afterEpipe = after.toString();

    // 50 MiB of stdout, streamed: neither process may hold it.
    const rss0 = rssKiB(pid);
    let peak = rss0;
    let selfPeak = process.memoryUsage().rss;
    const self0 = selfPeak;
    let n = 0;
    const t2 = performance.now();
    const big = await vm.exec(['head', '-c', String(50 * MiB), '/dev/zero'], {
      onStdout: (c) => { n += c.length; peak = Math.max(peak, rssKiB(pid)); selfPeak = Math.max(selfPeak, process.memoryUsage().rss); },
    });
    report.bigStdout = { exitCode: big.exitCode, bytes: n, seconds: (performance.now() - t2) / 1000, vmmRssGrowthKiB: peak - rss0, clientRssGrowthKiB: Math.round((selfPeak - self0) / 1024) };

    await vm.pause();
    await vm.resume();
    report.afterResume = (await vm.exec(['echo', 'resumed'])).stdout.toString();

    await vm.stop();
    report.stopped = { ended: vm.ended, leftover: fs.readdirSync(workDir) };
    let alive = true;
    try { process.kill(pid, 0); } catch { alive = false; }
    report.stopped = { ...(report.stopped as object), processAlive: alive };

    report.pooled = await pooledVm(kernel, initrd, workDir);
  } catch (err) {
    report.error = (err as Error).stack ?? String(err);
  } finally {
    report.console = Buffer.concat(consoleOut).toString().slice(-3000);
    await vm?.stop().catch(() => {});
    fs.rmSync(workDir, { recursive: true, force: true });
    save();
  }
}

void main();
