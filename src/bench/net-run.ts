/**
 * The network benchmark's inner run (`node dist/bench/net-run.js PLAN`), where KVM boots Linux
 * at speed: this machine with hardware KVM, else inside the emulated KVM host. Makes one TAP,
 * then boots Sparkler and QEMU microvm (virtio-net-device on the same TAP, vhost off) in turn
 * on the same bzImage, initramfs and command line. The guest pings the host, sends BYTES to the
 * host over TCP, then receives BYTES; this process is the host's end, so it times each transfer
 * from its first byte (guest->host) or its connection (host->guest) to its last, and reads the
 * VMM's CPU time (/proc/PID/stat utime + stime, every thread; and the live threads but the
 * vCPU's, from /proc/PID/task) at both ends. Writes PLAN.out.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { microvmArgs } from './qemu';
import { killAndWait, spawnTimed, Spawned, vmmEnv, withTimeout } from './proc';

export type NetVmm = 'sparkler' | 'qemu';

export interface NetPlan {
  sparklerBin: string;
  qemu?: string;
  bzImage: string;
  initrd: string;
  /** Bytes each way per run. */
  bytes: number;
  runs: number;
  memMiB: number;
  timeoutMs: number;
  out: string;
}

export interface NetSample {
  vmm: NetVmm;
  run: number;
  /** MiB/s, guest -> host and host -> guest. */
  upMiBps?: number;
  downMiBps?: number;
  /** VMM CPU seconds per GiB moved, each way: every thread, the vCPU's (guest time) included. */
  upCpuSPerGiB?: number;
  downCpuSPerGiB?: number;
  /** The same without the vCPU thread: the VMM's own work (device emulation, event loop). */
  upVmmCpuSPerGiB?: number;
  downVmmCpuSPerGiB?: number;
  /** The guest's ping to the host: average round trip in ms. */
  rttMs?: number;
  /** The fastest of those round trips (the first pays for cold code paths and ARP). */
  rttMinMs?: number;
  error?: string;
}

export const TAP = 'spbench0';
const HOST_IP = '172.16.0.1';
const GUEST_MAC = '06:00:ac:10:00:02';
const UP_PORT = 5101;
const DOWN_PORT = 5102;
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const DONE = /NET-BENCH-DONE/;

/** The guest's side: ping, send, receive, then the init reboots (both VMMs end on it). */
export function guestCommand(bytes: number): string {
  return [
    `ping -c 5 ${HOST_IP} | tail -n 1`,
    `dd if=/dev/zero bs=64k count=${bytes / 65536} 2>/dev/null | nc ${HOST_IP} ${UP_PORT}`,
    `nc ${HOST_IP} ${DOWN_PORT} </dev/null >/dev/null`,
    'echo NET-BENCH-DONE',
  ].join('; ');
}

export function guestCmdline(bytes: number): string {
  return `console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd ip=172.16.0.2::${HOST_IP}:255.255.255.0::eth0:off`
    + ` sparkler.cmd=${Buffer.from(guestCommand(bytes)).toString('base64')}`;
}

/** busybox ping's summary line: `round-trip min/avg/max = 0.215/0.301/0.433 ms`: the average, or with `which` the minimum. */
export function parseRtt(text: string, which: 'avg' | 'min' = 'avg'): number | undefined {
  const m = /round-trip min\/avg\/max = ([\d.]+)\/([\d.]+)\/[\d.]+ ms/.exec(text);
  return m ? Number(m[which === 'min' ? 1 : 2]) : undefined;
}

/** utime + stime of a process (all its threads, live and ended) in seconds, from /proc/PID/stat. */
export function procCpuSeconds(pid: number, ticksPerS: number, read = (p: string) => fs.readFileSync(p, 'utf8')): number {
  const stat = read(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  return (Number(fields[11]) + Number(fields[12])) / ticksPerS;
}

/** vCPU threads by name: Sparkler's (Firecracker's name) and QEMU's. */
export const VCPU_THREAD = /^(fc_vcpu \d+|CPU \d+\/KVM)$/;

/** utime + stime of the process's live threads other than vCPUs, in seconds. */
export function procNonVcpuCpuSeconds(pid: number, ticksPerS: number): number {
  let total = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const comm = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      if (!VCPU_THREAD.test(comm)) total += procCpuSeconds(Number(tid), ticksPerS, () => fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'));
    } catch {
      // the thread ended meanwhile
    }
  }
  return total;
}

export function qemuNetArgs(plan: Pick<NetPlan, 'bzImage' | 'initrd' | 'memMiB' | 'bytes'>): string[] {
  return [
    ...microvmArgs({ kernel: plan.bzImage, initrd: plan.initrd, cmdline: guestCmdline(plan.bytes), vcpus: 1, memMiB: plan.memMiB }),
    '-netdev', `tap,id=n0,ifname=${TAP},script=no,downscript=no,vhost=off`,
    '-device', `virtio-net-device,netdev=n0,mac=${GUEST_MAC}`,
    // Thread names (`CPU 0/KVM`), so the vCPU thread can be told from the others.
    '-name', 'net-bench,debug-threads=on',
  ];
}

export function sparklerNetConfig(plan: Pick<NetPlan, 'bzImage' | 'initrd' | 'memMiB' | 'bytes'>): object {
  return {
    'boot-source': { kernel_image_path: plan.bzImage, initrd_path: plan.initrd, boot_args: guestCmdline(plan.bytes) },
    'machine-config': { vcpu_count: 1, mem_size_mib: plan.memMiB },
    'network-interfaces': [{ iface_id: 'eth0', host_dev_name: TAP, guest_mac: GUEST_MAC }],
  };
}

interface Span { t0: number; cpu0: number; vmm0: number }
interface Took { s: number; cpu: number; vmm: number }

/** The host's ends of both transfers for one boot; `pid` is the VMM's. */
function hostEnds(bytes: number, pid: () => number, ticks: number) {
  const now = () => Number(process.hrtime.bigint()) / 1e9;
  const start = (): Span => ({ t0: now(), cpu0: procCpuSeconds(pid(), ticks), vmm0: procNonVcpuCpuSeconds(pid(), ticks) });
  const took = (span: Span): Took => ({ s: now() - span.t0, cpu: procCpuSeconds(pid(), ticks) - span.cpu0, vmm: procNonVcpuCpuSeconds(pid(), ticks) - span.vmm0 });
  const result: { up?: Took; down?: Took } = {};
  const blob = Buffer.alloc(bytes);
  const up = net.createServer((s) => {
    let n = 0;
    let span: Span | undefined;
    s.on('error', () => {});
    s.on('data', (d) => {
      span ??= start();
      n += d.length;
      if (n >= bytes && result.up === undefined) {
        result.up = took(span);
        s.end();
      }
    });
  });
  const down = net.createServer((s) => {
    const span = start();
    s.on('error', () => {});
    s.on('close', () => { result.down = took(span); });
    s.end(blob);
  });
  const listening = Promise.all([
    new Promise<void>((r) => up.listen(UP_PORT, HOST_IP, r)),
    new Promise<void>((r) => down.listen(DOWN_PORT, HOST_IP, r)),
  ]);
  return { result, listening, close: () => { up.close(); down.close(); } };
}

async function oneRun(plan: NetPlan, vmm: NetVmm, run: number, ticks: number, scratch: string): Promise<NetSample> {
  let p: Spawned | undefined;
  const ends = hostEnds(plan.bytes, () => p!.child.pid!, ticks);
  await ends.listening;
  let stdout = '';
  try {
    if (vmm === 'sparkler') {
      const config = `${scratch}/vm.json`;
      fs.writeFileSync(config, JSON.stringify(sparklerNetConfig(plan)));
      p = spawnTimed(plan.sparklerBin, ['--no-api', '--config-file', config], { env: vmmEnv() });
    } else {
      p = spawnTimed(plan.qemu!, qemuNetArgs(plan));
    }
    // The run ends at the guest's marker: QEMU microvm has no keyboard controller, so the
    // guest's reboot=k reset never ends QEMU (its -no-reboot does not see one).
    const done = new Promise<string>((resolve) => {
      p!.child.stdout?.on('data', (d: Buffer) => {
        stdout = (stdout + d.toString()).slice(-65536);
        if (DONE.test(stdout)) resolve('done');
      });
      void p!.exited.then((c) => resolve(`exit ${c}`));
    });
    const how = await withTimeout(done, plan.timeoutMs, `${vmm} run ${run + 1}`);
    const sample: NetSample = { vmm, run, rttMs: parseRtt(stdout), rttMinMs: parseRtt(stdout, 'min') };
    const { up, down } = ends.result;
    const gib = plan.bytes / GiB;
    if (up) Object.assign(sample, { upMiBps: plan.bytes / MiB / up.s, upCpuSPerGiB: up.cpu / gib, upVmmCpuSPerGiB: up.vmm / gib });
    if (down) Object.assign(sample, { downMiBps: plan.bytes / MiB / down.s, downCpuSPerGiB: down.cpu / gib, downVmmCpuSPerGiB: down.vmm / gib });
    if (!up || !down || how !== 'done') sample.error = `the guest did not finish both transfers (${how}): ${stdout.slice(-600)} ${p.stderrTail().slice(-600)}`;
    return sample;
  } catch (err) {
    return { vmm, run, error: `${(err as Error).message}: ${stdout.slice(-600)} ${p?.stderrTail().slice(-600) ?? ''}` };
  } finally {
    if (p) await killAndWait(p).catch(() => {});
    ends.close();
  }
}

export async function runNetPlan(plan: NetPlan, progress: (line: string) => void = (l) => process.stderr.write(`[net-run] ${l}\n`)): Promise<NetSample[]> {
  const ticks = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
  const sh = (cmd: string) => spawnSync('sh', ['-c', cmd], { stdio: 'inherit' });
  sh(`ip tuntap add dev ${TAP} mode tap && ip addr add ${HOST_IP}/24 dev ${TAP} && ip link set ${TAP} up`);
  const scratch = fs.mkdtempSync('/tmp/sparkler-net-run-');
  const samples: NetSample[] = [];
  try {
    const vmms: NetVmm[] = plan.qemu ? ['sparkler', 'qemu'] : ['sparkler'];
    for (let run = 0; run < plan.runs; run++) {
      // Alternate who goes first, so that a drift in the machine's load falls on both.
      for (const vmm of run % 2 === 0 ? vmms : [...vmms].reverse()) {
        const s = await oneRun(plan, vmm, run, ticks, scratch);
        progress(`${vmm} run ${run + 1}: ${s.error ?? `up ${s.upMiBps?.toFixed(1)} MiB/s, down ${s.downMiBps?.toFixed(1)} MiB/s, rtt ${s.rttMs} ms (min ${s.rttMinMs}), CPU/GiB up ${s.upCpuSPerGiB?.toFixed(2)} s down ${s.downCpuSPerGiB?.toFixed(2)} s, without the vCPU up ${s.upVmmCpuSPerGiB?.toFixed(2)} s down ${s.downVmmCpuSPerGiB?.toFixed(2)} s`}`);
        samples.push(s);
        fs.writeFileSync(plan.out, JSON.stringify(samples));
      }
    }
  } finally {
    sh(`ip link del ${TAP}`);
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  return samples;
}

if (require.main === module) {
  const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8')) as NetPlan;
  runNetPlan(plan).then(() => process.exit(0), (err) => {
    process.stderr.write(`net-run: ${(err as Error).stack}\n`);
    process.exit(1);
  });
}
