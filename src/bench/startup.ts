/**
 * VMM-side start-up on this machine's /dev/kvm (tiny guests: no guest boot to wait for).
 *   api_ready_ms:      spawn() -> the control socket answers its first request
 *                      (Sparkler: GET / over --api-sock; QEMU: the QMP greeting and
 *                      qmp_capabilities over -qmp, started with -S);
 *   api_socket_accept_ms: spawn() -> the socket accepts a connection;
 *   api_ready_cpu_ms:  CPU time the process (all its threads, /proc/PID/task/N/schedstat) had
 *                      used when the socket first accepted;
 *   instance_start_to_guest_ms: InstanceStart sent (QEMU: `cont`) -> the guest's first mark;
 *   process_start_to_guest_ms: spawn() with a config file (QEMU: its command line) -> the mark.
 * QEMU builds the whole machine before its QMP socket exists, so its `cont` only starts vCPUs
 * while Sparkler's InstanceStart builds the VM: compare process_start_to_guest_ms for the
 * complete path.
 */
import * as path from 'node:path';
import { BenchContext, SPARKLER_MARK_LINE } from './context';
import { QEMU_MARK_EXIT, SPARKLER_MARK_RESET } from './guests';
import { firstLine, httpUnix, killAndWait, now, openFifo, processCpuNs, Qmp, spawnTimed, waitForSocket, watchLines, withTimeout } from './proc';
import { microvmArgs, QEMU_INIT_LINE } from './qemu';
import { BenchEntry, makeEntry } from './results';
import { guestFile, sparklerConfig, startQemu, startSparkler, TINY_MEM_MIB } from './tiny-vms';

interface Sample {
  acceptMs: number;
  readyMs: number;
  cpuMs: number;
  instanceStartMs: number;
}

const TIMEOUT = 30_000;

async function sparklerApi(ctx: BenchContext, run: number): Promise<Sample> {
  const sock = path.join(ctx.work, `api-${run}.sock`);
  const kernel = guestFile(ctx, 'sparkler-mark-reset.elf', SPARKLER_MARK_RESET());
  const p = spawnTimed(ctx.bin, ['--api-sock', sock, '--boot-timer']);
  try {
    const mark = firstLine(p, p.child.stdout, SPARKLER_MARK_LINE);
    mark.catch(() => undefined);
    const accepted = await waitForSocket(sock, p, TIMEOUT, 0.5);
    const cpuMs = processCpuNs(p.child.pid!) / 1e6;
    const info = await httpUnix(sock, 'GET', '/');
    const ready = now();
    if (info.status !== 200) throw new Error(`GET / answered ${info.status}`);
    for (const [route, body] of [
      ['/boot-source', { kernel_image_path: kernel, boot_args: 'reboot=k' }],
      ['/machine-config', { vcpu_count: 1, mem_size_mib: TINY_MEM_MIB }],
    ] as const) {
      const r = await httpUnix(sock, 'PUT', route, body);
      if (r.status !== 204) throw new Error(`PUT ${route} answered ${r.status}: ${r.body}`);
    }
    const sent = now();
    httpUnix(sock, 'PUT', '/actions', { action_type: 'InstanceStart' }).catch(() => undefined);
    const { at } = await withTimeout(mark, TIMEOUT, 'the guest mark after InstanceStart');
    return { acceptMs: accepted - p.startedAt, readyMs: ready - p.startedAt, cpuMs, instanceStartMs: at - sent };
  } finally {
    await killAndWait(p);
  }
}

async function qemuApi(ctx: BenchContext, run: number): Promise<Sample> {
  const sock = path.join(ctx.work, `qmp-${run}.sock`);
  const log = path.join(ctx.work, `qmp-${run}.log`);
  const fifo = openFifo(log);
  const kernel = guestFile(ctx, 'qemu-mark-exit.elf', QEMU_MARK_EXIT());
  const p = spawnTimed(ctx.qemu!, microvmArgs({ kernel, vcpus: 1, memMiB: TINY_MEM_MIB, qmp: sock, log, debugExit: true }));
  watchLines(p.child.stdout, () => undefined);
  try {
    const mark = firstLine(p, fifo, QEMU_INIT_LINE);
    mark.catch(() => undefined);
    const accepted = await waitForSocket(sock, p, TIMEOUT, 0.5);
    const cpuMs = processCpuNs(p.child.pid!) / 1e6;
    const qmp = await Qmp.connect(sock);
    try {
      await qmp.next();
      await qmp.command('qmp_capabilities');
      const ready = now();
      const sent = now();
      qmp.command('cont').catch(() => undefined);
      const { at } = await withTimeout(mark, TIMEOUT, 'the guest mark after cont');
      return { acceptMs: accepted - p.startedAt, readyMs: ready - p.startedAt, cpuMs, instanceStartMs: at - sent };
    } finally {
      qmp.close();
    }
  } finally {
    await killAndWait(p);
    fifo.destroy();
  }
}

async function processToGuest(ctx: BenchContext, vmm: 'sparkler' | 'qemu'): Promise<number> {
  const s = vmm === 'sparkler'
    ? await startSparkler(ctx, sparklerConfig(ctx, guestFile(ctx, 'sparkler-mark-reset.elf', SPARKLER_MARK_RESET())))
    : await startQemu(ctx, { kernel: guestFile(ctx, 'qemu-mark-exit.elf', QEMU_MARK_EXIT()), vcpus: 1, memMiB: TINY_MEM_MIB, debugExit: true });
  await killAndWait(s.p);
  s.fifo?.destroy();
  return s.markAt - s.p.startedAt;
}

export async function startupSuite(ctx: BenchContext): Promise<BenchEntry[]> {
  const runs = ctx.quick ? 7 : 15;
  const api: Record<'sparkler' | 'qemu', Sample[]> = { sparkler: [], qemu: [] };
  const direct: Record<'sparkler' | 'qemu', number[]> = { sparkler: [], qemu: [] };
  const vmms = ctx.qemu ? (['sparkler', 'qemu'] as const) : (['sparkler'] as const);
  for (let r = 0; r < runs; r++) {
    for (const vmm of r % 2 ? [...vmms].reverse() : vmms) {
      try {
        const s = vmm === 'sparkler' ? await sparklerApi(ctx, r) : await qemuApi(ctx, r);
        api[vmm].push(s);
        const d = await processToGuest(ctx, vmm);
        direct[vmm].push(d);
        ctx.progress(`start-up ${vmm} run ${r + 1}/${runs}: socket ${s.acceptMs.toFixed(1)} ms (${s.cpuMs.toFixed(1)} CPU ms), answers ${s.readyMs.toFixed(1)} ms, start -> guest ${s.instanceStartMs.toFixed(1)} ms; process -> guest ${d.toFixed(1)} ms`);
      } catch (err) {
        ctx.problems.push(`start-up, ${vmm}: ${(err as Error).message}`);
      }
    }
  }
  const where = ctx.localKvm;
  const q = <T>(xs: T[], f: (x: T) => number): number[] | undefined => (ctx.qemu ? xs.map(f) : undefined);
  return [
    makeEntry({
      name: 'api_ready_ms', unit: 'ms', where, sparkler: api.sparkler.map((s) => s.readyMs), qemu: q(api.qemu, (s) => s.readyMs),
      variant: 'spawn -> first answer on the control socket (Sparkler GET / on --api-sock; QEMU QMP greeting + qmp_capabilities, -S with a tiny guest)',
    }),
    makeEntry({
      name: 'api_socket_accept_ms', unit: 'ms', where, sparkler: api.sparkler.map((s) => s.acceptMs), qemu: q(api.qemu, (s) => s.acceptMs),
      variant: 'spawn -> the socket accepts a connection (polled every 0.5 ms)',
    }),
    makeEntry({
      name: 'api_ready_cpu_ms', unit: 'CPU ms', where, sparkler: api.sparkler.map((s) => s.cpuMs), qemu: q(api.qemu, (s) => s.cpuMs),
      variant: 'CPU time of all threads when the socket first accepted (schedstat)',
    }),
    makeEntry({
      name: 'instance_start_to_guest_ms', unit: 'ms', where, sparkler: api.sparkler.map((s) => s.instanceStartMs), qemu: q(api.qemu, (s) => s.instanceStartMs),
      variant: 'PUT /actions InstanceStart (QEMU: QMP cont) -> the tiny guest\'s first MMIO write',
      note: 'not like for like: QEMU has built the VM before QMP is up; Sparkler builds it on InstanceStart',
    }),
    makeEntry({
      name: 'process_start_to_guest_ms', unit: 'ms', where, sparkler: direct.sparkler, qemu: ctx.qemu ? direct.qemu : undefined,
      variant: 'spawn with a config file / command line -> the tiny guest\'s first MMIO write (whole VMM set-up, no kernel boot)',
    }),
  ];
}
