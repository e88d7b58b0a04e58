/**
 * Exit round trip: the guest writes a byte to the UART's scratch register (port 0x3FF, a
 * register the TypeScript serial device handles) `count` times between two marks at
 * 0xC000_0000. Sparkler reports both marks through its boot timer (wall and CPU microseconds),
 * so one exit's round trip is the span over (count + 1) exits, measured inside the VMM with no
 * process start-up in it. The C floor (bench/exit-floor.c, compiled now with gcc -O2) runs the
 * very same guest bytes in the same 64-bit state with the tightest KVM_RUN loop on one thread,
 * and times the same span. Both run on this machine's /dev/kvm, alternating.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BenchContext, REPO_ROOT, SPARKLER_MARK_LINE } from './context';
import { exitLoopCode, QEMU_EXIT_LOOP, QEMU_POLLED_TX, SPARKLER_EXIT_LOOP, SPARKLER_POLLED_TX, UART_SCR, UART_THR } from './guests';
import { killAndWait, openFifo, processCpuNs, spawnTimed, vmmEnv, watchLines, withTimeout } from './proc';
import { microvmArgs, QEMU_INIT_LINE } from './qemu';
import { BenchEntry, makeEntry } from './results';
import { guestFile, sparklerConfig, TINY_MEM_MIB } from './tiny-vms';

export const FLOOR_SOURCE = path.join(REPO_ROOT, 'bench', 'exit-floor.c');

interface Sample {
  wallUs: number;
  cpuUs: number;
}

type Who = 'sparkler' | 'floor' | 'qemu' | 'sparkler-thr' | 'qemu-thr' | 'sparkler-pinned' | 'sparkler-thr-pinned' | 'sparkler-polled' | 'qemu-polled';

export function buildFloor(ctx: BenchContext): string {
  const out = path.join(ctx.work, 'exit-floor');
  const r = spawnSync('gcc', ['-O2', '-o', out, FLOOR_SOURCE], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gcc could not build ${FLOOR_SOURCE}: ${r.stderr || r.error?.message}`);
  return out;
}

/** `pin`: the whole process on one CPU (taskset), so the per-exit hand-over between threads never crosses CPUs. */
async function sparklerRun(ctx: BenchContext, config: string, count: number, pin = false): Promise<Sample> {
  const args = ['--no-api', '--boot-timer', '--config-file', config];
  const p = pin ? spawnTimed('taskset', ['-c', String(os.cpus().length - 1), ctx.bin, ...args], { env: vmmEnv() }) : spawnTimed(ctx.bin, args, { env: vmmEnv() });
  const marks: { wall: number; cpu: number }[] = [];
  watchLines(p.child.stdout, (line) => {
    const m = SPARKLER_MARK_LINE.exec(line);
    if (m) marks.push({ wall: Number(m[1]), cpu: Number(m[2]) });
  });
  const code = await withTimeout(p.exited, 600_000, 'the Sparkler exit loop');
  if (code !== 0 || marks.length < 2) throw new Error(`Sparkler exit loop ended with ${code} and ${marks.length} marks: ${p.stderrTail().trim()}`);
  const exits = count + 1;
  return { wallUs: (marks[1].wall - marks[0].wall) / exits, cpuUs: (marks[1].cpu - marks[0].cpu) / exits };
}

/** QEMU reports both marks on its guest_errors log; we timestamp their arrival and sample its CPU time then (the guest idles after the loop; we end QEMU). */
async function qemuRun(ctx: BenchContext, kernel: string, count: number): Promise<Sample> {
  const log = path.join(ctx.work, `exit-loop-${process.pid}.log`);
  const fifo = openFifo(log);
  const p = spawnTimed(ctx.qemu!, microvmArgs({ kernel, vcpus: 1, memMiB: TINY_MEM_MIB, log }));
  watchLines(p.child.stdout, () => undefined);
  const marks: { at: number; cpuNs: number }[] = [];
  let closed!: () => void;
  const done = new Promise<void>((resolve) => { closed = resolve; });
  watchLines(fifo, (line, at) => {
    if (!QEMU_INIT_LINE.test(line)) return;
    marks.push({ at, cpuNs: processCpuNs(p.child.pid!) });
    if (marks.length === 2) closed();
  });
  try {
    await withTimeout(Promise.race([done, p.exited]), 600_000, 'the QEMU exit loop');
    if (marks.length < 2) throw new Error(`QEMU exit loop: ${marks.length} marks: ${p.stderrTail().trim()}`);
    const exits = count + 1;
    return { wallUs: ((marks[1].at - marks[0].at) * 1000) / exits, cpuUs: (marks[1].cpuNs - marks[0].cpuNs) / 1000 / exits };
  } finally {
    await killAndWait(p);
    fifo.destroy();
    fs.rmSync(log, { force: true });
  }
}

async function floorRun(floor: string, codeFile: string): Promise<Sample> {
  const p = spawnTimed(floor, [codeFile]);
  let out = '';
  p.child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  const code = await withTimeout(p.exited, 600_000, 'the C floor');
  if (code !== 0) throw new Error(`exit-floor failed (${code}): ${p.stderrTail().trim()}`);
  const r = JSON.parse(out) as { exits: number; ns: number; cpu_ns: number };
  return { wallUs: r.ns / r.exits / 1000, cpuUs: r.cpu_ns / r.exits / 1000 };
}

export async function exitSuite(ctx: BenchContext): Promise<BenchEntry[]> {
  const count = ctx.quick ? 20_000 : 200_000;
  const runs = ctx.quick ? 5 : 9;
  const floor = buildFloor(ctx);
  const codeFile = path.join(ctx.work, `exit-loop-${count}.bin`);
  fs.writeFileSync(codeFile, exitLoopCode(count));
  const runners: Partial<Record<Who, () => Promise<Sample>>> = {
    sparkler: ((c) => () => sparklerRun(ctx, c, count))(sparklerConfig(ctx, guestFile(ctx, `sparkler-scr-${count}.elf`, SPARKLER_EXIT_LOOP(count, UART_SCR)))),
    floor: () => floorRun(floor, codeFile),
    'sparkler-thr': ((c) => () => sparklerRun(ctx, c, count))(sparklerConfig(ctx, guestFile(ctx, `sparkler-thr-${count}.elf`, SPARKLER_EXIT_LOOP(count, UART_THR)))),
    'sparkler-pinned': ((c) => () => sparklerRun(ctx, c, count, true))(sparklerConfig(ctx, guestFile(ctx, `sparkler-scr-${count}.elf`, SPARKLER_EXIT_LOOP(count, UART_SCR)))),
    'sparkler-thr-pinned': ((c) => () => sparklerRun(ctx, c, count, true))(sparklerConfig(ctx, guestFile(ctx, `sparkler-thr-${count}.elf`, SPARKLER_EXIT_LOOP(count, UART_THR)))),
    'sparkler-polled': ((c) => () => sparklerRun(ctx, c, count))(sparklerConfig(ctx, guestFile(ctx, `sparkler-polled-${count}.elf`, SPARKLER_POLLED_TX(count)))),
  };
  if (ctx.qemu) {
    runners.qemu = ((k) => () => qemuRun(ctx, k, count))(guestFile(ctx, `qemu-scr-${count}.elf`, QEMU_EXIT_LOOP(count, UART_SCR)));
    runners['qemu-thr'] = ((k) => () => qemuRun(ctx, k, count))(guestFile(ctx, `qemu-thr-${count}.elf`, QEMU_EXIT_LOOP(count, UART_THR)));
    runners['qemu-polled'] = ((k) => () => qemuRun(ctx, k, count))(guestFile(ctx, `qemu-polled-${count}.elf`, QEMU_POLLED_TX(count)));
  }
  const samples: Record<Who, Sample[]> = { sparkler: [], floor: [], qemu: [], 'sparkler-thr': [], 'qemu-thr': [], 'sparkler-pinned': [], 'sparkler-thr-pinned': [], 'sparkler-polled': [], 'qemu-polled': [] };
  const order = Object.keys(runners) as Who[];
  for (let r = 0; r < runs; r++) {
    for (const who of r % 2 ? [...order].reverse() : order) {
      try {
        const x = await runners[who]!();
        samples[who].push(x);
        ctx.progress(`exits ${who} run ${r + 1}/${runs}: ${x.wallUs.toFixed(2)} us wall, ${x.cpuUs.toFixed(2)} CPU us per exit`);
      } catch (err) {
        ctx.problems.push(`exit round trip, ${who}: ${(err as Error).message}`);
      }
    }
  }
  const wall = (w: Who) => samples[w].map((x) => x.wallUs);
  const cpu = (w: Who) => samples[w].map((x) => x.cpuUs);
  const q = (xs: number[]) => (ctx.qemu ? xs : undefined);
  const scr = `${count} byte writes to the UART scratch register (port 0x3FF) between two MMIO marks, 1 vCPU`;
  const thr = `${count} byte writes to the UART transmit register (port 0x3F8: console output to a pipe) between two MMIO marks`;
  const polled = `${count} bytes of console output as Linux's console driver writes them (LSR read, then THR write: two port accesses a byte; Sparkler queues the THR writes with KVM's coalesced PIO where it can) between two MMIO marks`;
  const where = ctx.localKvm;
  return [
    makeEntry({ name: 'exit_roundtrip_us', unit: 'us', where, sparkler: wall('sparkler'), floor: wall('floor'), variant: `${scr}; wall time per exit; against the C floor (same guest bytes, KVM_RUN loop in C)` }),
    makeEntry({ name: 'exit_roundtrip_cpu_us', unit: 'CPU us', where, sparkler: cpu('sparkler'), floor: cpu('floor'), variant: `${scr}; CPU time of the whole process per exit (less disturbed by other load than wall time)` }),
    makeEntry({ name: 'exit_roundtrip_us/qemu', unit: 'us', where, sparkler: wall('sparkler'), qemu: q(wall('qemu')), variant: `${scr}; wall time per exit; QEMU runs the same loop (32-bit PVH guest) in its C device model` }),
    makeEntry({ name: 'exit_roundtrip_cpu_us/qemu', unit: 'CPU us', where, sparkler: cpu('sparkler'), qemu: q(cpu('qemu')), variant: `${scr}; CPU time per exit` }),
    makeEntry({ name: 'serial_tx_us_per_byte', unit: 'us', where, sparkler: wall('sparkler-thr'), qemu: q(wall('qemu-thr')), variant: `${thr}; wall time per byte (the console-on hot path)` }),
    makeEntry({ name: 'serial_tx_cpu_us_per_byte', unit: 'CPU us', where, sparkler: cpu('sparkler-thr'), qemu: q(cpu('qemu-thr')), variant: `${thr}; CPU time per byte` }),
    makeEntry({ name: 'serial_polled_us_per_byte', unit: 'us', where, sparkler: wall('sparkler-polled'), qemu: q(wall('qemu-polled')), variant: `${polled}; wall time per byte` }),
    makeEntry({ name: 'serial_polled_cpu_us_per_byte', unit: 'CPU us', where, sparkler: cpu('sparkler-polled'), qemu: q(cpu('qemu-polled')), variant: `${polled}; CPU time per byte` }),
    makeEntry({ name: 'exit_roundtrip_us/pinned', unit: 'us', where, sparkler: wall('sparkler-pinned'), floor: wall('floor'), variant: `${scr}; experiment: Sparkler pinned to one CPU (taskset), no cross-CPU wake-up per exit; against the C floor` }),
    makeEntry({ name: 'exit_roundtrip_cpu_us/pinned', unit: 'CPU us', where, sparkler: cpu('sparkler-pinned'), floor: cpu('floor'), variant: `${scr}; experiment: pinned to one CPU; CPU time per exit` }),
    makeEntry({ name: 'serial_tx_us_per_byte/pinned', unit: 'us', where, sparkler: wall('sparkler-thr-pinned'), qemu: q(wall('qemu-thr')), variant: `${thr}; experiment: Sparkler pinned to one CPU` }),
  ];
}
