/**
 * VMM-side start-up on this machine's /dev/kvm (tiny guests: no guest boot to wait for).
 *   api_ready_ms:      spawn() -> the control socket answers its first request
 *                      (Sparkler: GET / over --api-sock; QEMU: the QMP greeting and
 *                      qmp_capabilities over -qmp, started with -S);
 *   api_socket_accept_ms: spawn() -> the socket accepts a connection;
 *   api_ready_cpu_ms:  CPU time the process (all its threads, /proc/PID/task/N/schedstat) had
 *                      used when the socket first accepted;
 *   instance_start_to_guest_ms: InstanceStart sent (QEMU: `cont`) -> the guest's first mark;
 *   process_start_to_guest_ms: spawn() with a config file (QEMU: its command line) -> the mark,
 *                      and the CPU time used by then.
 * QEMU builds the whole machine before its QMP socket exists, so its `cont` only starts vCPUs
 * while Sparkler's InstanceStart builds the VM: compare process_start_to_guest_ms for the
 * complete path. The comparison without the bundle (SPARKLER_NO_BUNDLE=1) is measured
 * in the same rounds as bin/sparkler and QEMU.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { BenchContext, plainVariant, SPARKLER_MARK_LINE, SparklerVariant } from './context';
import { QEMU_MARK_EXIT, SPARKLER_MARK_RESET } from './guests';
import { firstLine, httpUnix, killAndWait, now, openFifo, processCpuNs, Qmp, spawnSparkler, spawnTimed, vmmEnv, waitForSocket, watchLines, withTimeout } from './proc';
import { microvmArgs, QEMU_INIT_LINE } from './qemu';
import { BenchEntry, makeEntry } from './results';
import { nodeFloor, NodeFloorSample } from './node-floor';
import { pairedDifference } from './stats';
import { guestFile, sparklerConfig, startQemu, startSparkler, TINY_MEM_MIB } from './tiny-vms';

interface Sample {
  acceptMs: number;
  readyMs: number;
  cpuMs: number;
  instanceStartMs: number;
  /** spawn() -> guest mark with a config file, and CPU ms used by then. */
  directMs: number;
  directCpuMs: number;
}

const TIMEOUT = 30_000;

async function sparklerApi(ctx: BenchContext, v: SparklerVariant, run: number): Promise<Omit<Sample, 'directMs' | 'directCpuMs'>> {
  const sock = path.join(ctx.work, `api-${run}.sock`);
  const kernel = guestFile(ctx, 'sparkler-mark-reset.elf', SPARKLER_MARK_RESET());
  const p = spawnSparkler(v, ['--api-sock', sock, '--boot-timer']);
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

async function qemuApi(ctx: BenchContext, run: number): Promise<Omit<Sample, 'directMs' | 'directCpuMs'>> {
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

type Contender = SparklerVariant['name'] | 'qemu';

/** CPU ms an empty Node process has used when its script runs (process.cpuUsage: every thread, from exec). */
function nodeFloorCpuMs(runs: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = spawnSync(process.execPath, ['-e', 'const u = process.cpuUsage(); process.stdout.write(String((u.user + u.system) / 1000))'], { encoding: 'utf8', env: vmmEnv() });
    if (r.status === 0) out.push(Number(r.stdout));
  }
  return out;
}

export async function startupSuite(ctx: BenchContext): Promise<BenchEntry[]> {
  const runs = ctx.quick ? 7 : 15;
  const sparklers = [plainVariant(ctx.bin), ...ctx.experiments];
  // This machine's environment sets NODE_EXTRA_CA_CERTS, which every Node start pays for: the
  // suites start VMMs without it (proc.ts vmmEnv); here its cost is measured once.
  const caCerts = process.env.NODE_EXTRA_CA_CERTS;
  if (caCerts) sparklers.push({ ...plainVariant(ctx.bin), name: 'with-extra-ca-certs', env: { NODE_EXTRA_CA_CERTS: caCerts } });
  const contenders: Contender[] = [...sparklers.map((v) => v.name), ...(ctx.qemu ? (['qemu'] as const) : [])];
  const samples = new Map<Contender, Sample[]>(contenders.map((c) => [c, []]));
  // Per round: Sparkler's sample (by round, for the pairs) and Node's floor, measured right after it.
  const sparklerByRound: (Sample | undefined)[] = [];
  const floorByRound: (NodeFloorSample | undefined)[] = [];
  const sparklerKernel = guestFile(ctx, 'sparkler-mark-reset.elf', SPARKLER_MARK_RESET());
  const qemuKernel = guestFile(ctx, 'qemu-mark-exit.elf', QEMU_MARK_EXIT());
  for (let r = 0; r < runs; r++) {
    for (const c of r % 2 ? [...contenders].reverse() : contenders) {
      try {
        const v = sparklers.find((x) => x.name === c);
        const api = v ? await sparklerApi(ctx, v, r) : await qemuApi(ctx, r);
        const d = v
          ? await startSparkler(ctx, sparklerConfig(ctx, sparklerKernel), v)
          : await startQemu(ctx, { kernel: qemuKernel, vcpus: 1, memMiB: TINY_MEM_MIB, debugExit: true });
        await killAndWait(d.p);
        d.fifo?.destroy();
        const s: Sample = { ...api, directMs: d.markAt - d.p.startedAt, directCpuMs: d.cpuMs ?? NaN };
        samples.get(c)!.push(s);
        if (c === 'sparkler') sparklerByRound[r] = s;
        ctx.progress(`start-up ${c} run ${r + 1}/${runs}: socket ${s.acceptMs.toFixed(1)} ms (${s.cpuMs.toFixed(1)} CPU ms), answers ${s.readyMs.toFixed(1)} ms, start -> guest ${s.instanceStartMs.toFixed(1)} ms; process -> guest ${s.directMs.toFixed(1)} ms (${s.directCpuMs.toFixed(1)} CPU ms)`);
      } catch (err) {
        ctx.problems.push(`start-up, ${c}: ${(err as Error).message}`);
      }
    }
    try {
      floorByRound[r] = await nodeFloor(ctx, r);
    } catch (err) {
      ctx.problems.push(`start-up, Node's floor: ${(err as Error).message}`);
    }
  }
  const where = ctx.localKvm;
  const of = (c: Contender, f: (s: Sample) => number): number[] => (samples.get(c) ?? []).map(f);
  const q = (f: (s: Sample) => number): number[] | undefined => (ctx.qemu ? of('qemu', f) : undefined);
  const metrics: { name: string; unit: string; f: (s: Sample) => number; variant: string; note?: string }[] = [
    { name: 'api_ready_ms', unit: 'ms', f: (s) => s.readyMs, variant: 'spawn -> first answer on the control socket (Sparkler GET / on --api-sock; QEMU QMP greeting + qmp_capabilities, -S with a tiny guest)' },
    { name: 'api_socket_accept_ms', unit: 'ms', f: (s) => s.acceptMs, variant: 'spawn -> the socket accepts a connection (polled every 0.5 ms)' },
    { name: 'api_ready_cpu_ms', unit: 'CPU ms', f: (s) => s.cpuMs, variant: 'CPU time of all threads when the socket first accepted (schedstat)' },
    {
      name: 'instance_start_to_guest_ms', unit: 'ms', f: (s) => s.instanceStartMs, variant: "PUT /actions InstanceStart (QEMU: QMP cont) -> the tiny guest's first MMIO write",
      note: 'not like for like: QEMU has built the VM before QMP is up; Sparkler builds it on InstanceStart',
    },
    { name: 'process_start_to_guest_ms', unit: 'ms', f: (s) => s.directMs, variant: "spawn with a config file / command line -> the tiny guest's first MMIO write (whole VMM set-up, no kernel boot)" },
    { name: 'process_start_to_guest_cpu_ms', unit: 'CPU ms', f: (s) => s.directCpuMs, variant: "CPU time used by the VMM when the tiny guest's first MMIO write arrives (Sparkler: its boot timer; QEMU: schedstat)" },
  ];
  const entries: BenchEntry[] = [];
  const floor = nodeFloorCpuMs(runs);
  entries.push(makeEntry({
    name: 'process_start_to_guest_cpu_ms/node_floor', unit: 'CPU ms', where, sparkler: floor, qemu: q((s) => s.directCpuMs),
    variant: "an empty `node -e` script (Node's own start-up, no VMM code): the floor under any VMM written for Node, beside QEMU's whole start to a running guest",
  }));
  const floors = floorByRound.filter((x): x is NodeFloorSample => x !== undefined);
  entries.push(makeEntry({
    name: 'node_floor_ms/exit', unit: 'ms', where, sparkler: floors.map((f) => f.exitMs), qemu: q((s) => s.acceptMs),
    variant: "`node -e 0`: spawn -> exit (Node's own start and end), beside QEMU's spawn -> QMP socket accepting",
  }));
  entries.push(makeEntry({
    name: 'node_floor_ms/http_accept', unit: 'ms', where, sparkler: floors.map((f) => f.acceptMs), qemu: q((s) => s.acceptMs),
    variant: 'an empty Node http server on a Unix socket: spawn -> the socket accepts, beside QEMU\'s QMP socket',
  }));
  entries.push(makeEntry({
    name: 'node_floor_ms/http_accept_cpu', unit: 'CPU ms', where, sparkler: floors.map((f) => f.acceptCpuMs), qemu: q((s) => s.cpuMs),
    variant: "the empty Node http server's CPU time (schedstat) when its socket first accepted",
  }));
  for (const [name, f, g, unit] of [
    ['api_socket_accept_ms/over_node_floor', (s: Sample) => s.acceptMs, (n: NodeFloorSample) => n.acceptMs, 'ms'],
    ['api_ready_cpu_ms/over_node_floor', (s: Sample) => s.cpuMs, (n: NodeFloorSample) => n.acceptCpuMs, 'CPU ms'],
  ] as const) {
    const sp = sparklerByRound.map((s) => (s ? f(s) : undefined));
    const fl = floorByRound.map((n) => (n ? g(n) : undefined));
    const diff = pairedDifference(sp, fl);
    if (!diff) continue;
    const diffs = sp.map((x, i) => (x !== undefined && fl[i] !== undefined ? x - fl[i]! : undefined)).filter((x): x is number => x !== undefined);
    const entry = makeEntry({
      name, unit, where, sparkler: diffs,
      variant: `Sparkler's API socket (bin/sparkler --api-sock) minus an empty Node http server on a Unix socket, measured in the same round: what Sparkler's own code adds to Node's floor; target <= 10 ${unit}`,
      note: `median of the per-round differences ${diff.median} ${unit}, 95% bootstrap interval ${diff.ci95 ? `[${diff.ci95[0]}, ${diff.ci95[1]}]` : 'none (one round)'}, ${diff.pairs} rounds`,
    });
    entries.push(entry);
  }
  for (const m of metrics) {
    entries.push(makeEntry({ name: m.name, unit: m.unit, where, sparkler: of('sparkler', m.f), qemu: q(m.f), variant: m.variant, note: m.note }));
  }
  const what: Record<string, string> = {
    unbundled: 'bin/sparkler with SPARKLER_NO_BUNDLE=1: the modules loaded from dist/ one by one, as before the bundle shipped',
    'with-extra-ca-certs': `bin/sparkler with NODE_EXTRA_CA_CERTS=${caCerts ?? ''} as this machine's environment sets it (the other figures are without it)`,
  };
  for (const v of sparklers.slice(1)) {
    for (const m of metrics.filter((x) => x.name !== 'instance_start_to_guest_ms')) {
      entries.push(makeEntry({
        name: `${m.name}/${v.name.replace(/[^a-z]+/g, '_')}`, unit: m.unit, where, sparkler: of(v.name, m.f), qemu: q(m.f),
        variant: `${what[v.name]}; ${m.variant}`,
      }));
    }
  }
  return entries;
}
