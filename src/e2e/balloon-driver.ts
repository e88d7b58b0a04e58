/**
 * Drives bin/sparkler with a balloon where real Linux guests boot (run by balloon.e2e.test.ts,
 * inside the emulated KVM host on a PVM machine). Two 256 MiB guests, one after the other:
 * - `balloon`: the guest fills 160 MiB of tmpfs and frees it; the host inflates the balloon to
 *   180 MiB and measures the VMM's RSS before and after; stats are read before and after; the
 *   host deflates and the guest fills 160 MiB again;
 * - `reporting`: free_page_reporting on, no balloon target: the guest fills 160 MiB and frees
 *   it, and the VMM's RSS falls by itself;
 * - `oom`: deflate_on_oom with a 180 MiB balloon; the guest fills 96 MiB and gets the pages
 *   back from the balloon instead of an OOM kill;
 * - `hinting`: free_page_hinting; after the guest filled and freed 160 MiB a hinting run
 *   (acknowledge_on_stop) drops the free pages it hints.
 * Writes a JSON report to argv[2]; argv[3] is the kernel, argv[4] the initrd.
 *
 *   node dist/e2e/balloon-driver.js REPORT KERNEL INITRD
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { request } from '../api/testing';
import { waitFor } from '../testing/wait';
import { BIN } from './harness';

/** The guest's side: fill, free, then follow the balloon by watching MemFree. */
const GUEST_BALLOON = [
  'mkdir -p /m && mount -t tmpfs -o size=230M tmpfs /m',
  "free_kb() { awk '/MemFree/{print $2}' /proc/meminfo; }",
  'dd if=/dev/zero of=/m/f bs=1M count=160 2>/dev/null; echo SPK-FILLED free=$(free_kb)',
  'rm /m/f; echo SPK-FREED free=$(free_kb)',
  'while [ $(free_kb) -gt 100000 ]; do sleep 1; done; echo SPK-INFLATED free=$(free_kb)',
  'while [ $(free_kb) -lt 150000 ]; do sleep 1; done; echo SPK-DEFLATED free=$(free_kb)',
  'dd if=/dev/zero of=/m/f bs=1M count=160 2>/dev/null && echo SPK-REFILLED free=$(free_kb); rm -f /m/f',
  'sleep 600',
].join('\n');

const GUEST_REPORTING = [
  'mkdir -p /m && mount -t tmpfs -o size=230M tmpfs /m',
  'dd if=/dev/zero of=/m/f bs=1M count=160 2>/dev/null; echo SPK-FILLED',
  'rm /m/f; echo SPK-FREED',
  'sleep 600',
].join('\n');

/**
 * Under a 180 MiB balloon (about 60 MiB left free), fill 96 MiB: only pages taken back from the
 * balloon make that fit. (A 128 MiB fill took 85 deflations of 1 MiB, one per OOM notification,
 * which crawled under TCG on a loaded emulated host: one attempt ran past 6 minutes.)
 */
const GUEST_OOM = [
  'mkdir -p /m && mount -t tmpfs -o size=230M tmpfs /m',
  "free_kb() { awk '/MemFree/{print $2}' /proc/meminfo; }",
  // Wait until the balloon is (nearly) full and settled, then give the host 3 s to read it.
  'while [ $(free_kb) -gt 62000 ]; do sleep 1; done; sleep 5; echo SPK-INFLATED free=$(free_kb); sleep 3',
  'if dd if=/dev/zero of=/m/f bs=1M count=96 2>/dev/null; then echo SPK-OOM-FILLED; else echo SPK-OOM-FAILED; fi',
  'sleep 600',
].join('\n');

async function socketDir(): Promise<string> {
  for (const dir of ['/run', '/dev/shm', os.tmpdir()]) {
    const probe = path.join(dir, `sparkler-probe-${process.pid}.sock`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.createServer().once('error', () => resolve(false)).listen(probe, () => s.close(() => resolve(true)));
    });
    if (ok) return dir;
  }
  throw new Error('no directory here can hold a Unix socket');
}

/** Resident memory of a process in MiB (VmRSS). */
function rssMib(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN;
}

interface Vm {
  child: ChildProcess;
  sock: string;
  /** The guest console. */
  output: () => string;
  /** The VMM's log without the per-request lines. */
  log: () => string;
  call: (method: string, p: string, body?: object) => Promise<{ status: number; json: unknown }>;
}

async function startVm(name: string, kernel: string, initrd: string, guestCmd: string, balloon: object): Promise<Vm> {
  const sock = path.join(await socketDir(), `sparkler-${name}-${process.pid}.sock`);
  // The guest's console (stdout) apart from the VMM's log (a file, as Firecracker's --log-path):
  // a request line logged between two console writes would split a marker line in one stream.
  const logFile = `${sock}.log`;
  const child = spawn(BIN, ['--api-sock', sock, '--id', name, '--log-path', logFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let stderr = '';
  child.stdout!.on('data', (c) => { out += c; });
  child.stderr!.on('data', (c) => { stderr += c; });
  const readLog = (): string => { try { return fs.readFileSync(logFile, 'utf8'); } catch { return ''; } };
  await waitFor(() => /API server started\./.test(readLog()), 'API server started', 30_000);
  const call = async (method: string, p: string, body?: object) => {
    const r = await request(sock, method, p, body);
    return { status: r.status, json: r.json };
  };
  const cmd = Buffer.from(guestCmd).toString('base64');
  const bootArgs = `console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd sparkler.cmd=${cmd}`;
  const expect204 = async (p: string, body: object) => {
    const r = await call('PUT', p, body);
    if (r.status !== 204) throw new Error(`PUT ${p} answered ${r.status}: ${JSON.stringify(r.json)}`);
  };
  await expect204('/boot-source', { kernel_image_path: kernel, initrd_path: initrd, boot_args: bootArgs });
  await expect204('/machine-config', { vcpu_count: 1, mem_size_mib: 256 });
  await expect204('/balloon', balloon);
  await expect204('/actions', { action_type: 'InstanceStart' });
  return { child, sock, output: () => out, log: () => `${stderr}${readLog()}`.split('\n').filter((l) => !/API server received/.test(l)).join('\n'), call };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function balloonScenario(kernel: string, initrd: string, steps: Record<string, unknown>): Promise<void> {
  const vm = await startVm('balloon', kernel, initrd, GUEST_BALLOON, { amount_mib: 0, deflate_on_oom: true, stats_polling_interval_s: 1 });
  try {
    await waitFor(() => vm.output().includes('SPK-FREED'), 'the guest to fill and free 160 MiB', 300_000);
    await sleep(2500); // two stats periods
    steps.rssAfterFree = rssMib(vm.child.pid!);
    steps.statsBefore = (await vm.call('GET', '/balloon/statistics')).json;
    const cpuTicks = () => fs.readFileSync(`/proc/${vm.child.pid}/stat`, 'utf8').split(') ')[1].split(' ').slice(11, 13).map(Number);
    const cpu0 = cpuTicks();
    const t0 = Date.now();
    steps.inflate = (await vm.call('PATCH', '/balloon', { amount_mib: 180 })).status;
    let stats: { actual_mib?: number } = {};
    const deadline = Date.now() + 180_000;
    while ((stats.actual_mib ?? 0) < 180 && Date.now() < deadline) {
      await sleep(250);
      stats = (await vm.call('GET', '/balloon/statistics')).json as typeof stats;
    }
    steps.inflateSeconds = (Date.now() - t0) / 1000;
    const cpu1 = cpuTicks();
    // utime + stime of the whole VMM (vCPU thread included) over the inflation, in seconds (USER_HZ 100).
    steps.inflateVmmCpuSeconds = { user: (cpu1[0] - cpu0[0]) / 100, system: (cpu1[1] - cpu0[1]) / 100 };
    await sleep(2500);
    steps.rssInflated = rssMib(vm.child.pid!);
    steps.statsInflated = (await vm.call('GET', '/balloon/statistics')).json;
    await waitFor(() => vm.output().includes('SPK-INFLATED'), 'the guest to see the balloon', 60_000);
    steps.deflate = (await vm.call('PATCH', '/balloon', { amount_mib: 0 })).status;
    await waitFor(() => vm.output().includes('SPK-REFILLED'), 'the guest to fill 160 MiB again after the deflate', 300_000);
    steps.rssRefilled = rssMib(vm.child.pid!);
    steps.statsDeflated = (await vm.call('GET', '/balloon/statistics')).json;
    steps.metricsFlush = (await vm.call('PUT', '/actions', { action_type: 'FlushMetrics' })).status;
  } finally {
    steps.balloonOutput = vm.output().slice(-3000);
    steps.balloonLog = vm.log().slice(-2000);
    vm.child.kill('SIGKILL');
  }
}

async function reportingScenario(kernel: string, initrd: string, steps: Record<string, unknown>): Promise<void> {
  const vm = await startVm('reporting', kernel, initrd, GUEST_REPORTING, { amount_mib: 0, deflate_on_oom: false, free_page_reporting: true });
  try {
    await waitFor(() => vm.output().includes('SPK-FILLED'), 'the guest to fill 160 MiB', 300_000);
    steps.reportingRssFilled = rssMib(vm.child.pid!);
    await waitFor(() => vm.output().includes('SPK-FREED'), 'the guest to free it', 60_000);
    // Linux reports free 2 MiB blocks about 2 s after they are freed; give it a while.
    const samples: number[] = [];
    for (let i = 0; i < 20; i++) {
      await sleep(1000);
      samples.push(rssMib(vm.child.pid!));
      if (samples.length >= 2 && samples[samples.length - 1] === samples[samples.length - 2] && steps.reportingRssFilled as number - samples[samples.length - 1] > 100) break;
    }
    steps.reportingRssSamples = samples;
  } finally {
    steps.reportingOutput = vm.output().slice(-3000);
    vm.child.kill('SIGKILL');
  }
}

async function oomScenario(kernel: string, initrd: string, steps: Record<string, unknown>): Promise<void> {
  const vm = await startVm('oom', kernel, initrd, GUEST_OOM, { amount_mib: 180, deflate_on_oom: true, stats_polling_interval_s: 1 });
  try {
    await waitFor(() => vm.output().includes('SPK-INFLATED'), 'the guest to see the balloon', 300_000);
    steps.oomActualBefore = ((await vm.call('GET', '/balloon/statistics')).json as { actual_mib: number }).actual_mib;
    await waitFor(() => /SPK-OOM-(FILLED|FAILED)/.test(vm.output()), 'the guest to fill 96 MiB under the balloon', 300_000);
    steps.oomFilled = vm.output().includes('SPK-OOM-FILLED');
    steps.oomKilled = /Out of memory: Kill/.test(vm.output());
    const stats = (await vm.call('GET', '/balloon/statistics')).json as { actual_mib: number; oom_kill?: number };
    steps.oomActualAfter = stats.actual_mib;
    steps.oomKillStat = stats.oom_kill;
  } finally {
    steps.oomOutput = vm.output().slice(-3000);
    vm.child.kill('SIGKILL');
  }
}

async function hintingScenario(kernel: string, initrd: string, steps: Record<string, unknown>): Promise<void> {
  const vm = await startVm('hinting', kernel, initrd, GUEST_REPORTING, { amount_mib: 0, deflate_on_oom: false, free_page_hinting: true });
  try {
    await waitFor(() => vm.output().includes('SPK-FREED'), 'the guest to fill and free 160 MiB', 300_000);
    await sleep(1000);
    steps.hintingRssFreed = rssMib(vm.child.pid!);
    const t0 = Date.now();
    steps.hintingStart = (await vm.call('PATCH', '/balloon/hinting/start', { acknowledge_on_stop: true })).status;
    let status: { host_cmd?: number; guest_cmd?: number } = {};
    for (let i = 0; i < 240; i++) {
      await sleep(250);
      status = (await vm.call('GET', '/balloon/hinting/status')).json as typeof status;
      if (status.host_cmd === 1 && status.guest_cmd === 0) break;
    }
    steps.hintingSeconds = (Date.now() - t0) / 1000;
    steps.hintingStatus = status;
    steps.hintingRssAfter = rssMib(vm.child.pid!);
  } finally {
    steps.hintingOutput = vm.output().slice(-2000);
    vm.child.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  const [report, kernel, initrd] = process.argv.slice(2);
  const steps: Record<string, unknown> = {};
  for (const [name, scenario] of [['balloon', balloonScenario], ['reporting', reportingScenario], ['oom', oomScenario], ['hinting', hintingScenario]] as const) {
    try {
      await scenario(kernel, initrd, steps);
    } catch (err) {
      steps[`${name}Error`] = (err as Error).message;
    }
  }
  fs.writeFileSync(report, JSON.stringify(steps));
}

if (require.main === module) {
  main().then(() => process.exit(0), (err) => { process.stderr.write(`${err}\n`); process.exit(1); });
}
