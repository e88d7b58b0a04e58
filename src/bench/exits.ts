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
import * as path from 'node:path';
import { BenchContext, REPO_ROOT } from './context';
import { exitLoopCode, SPARKLER_EXIT_LOOP } from './guests';
import { spawnTimed, watchLines, withTimeout } from './proc';
import { BenchEntry, makeEntry } from './results';
import { guestFile, sparklerConfig } from './tiny-vms';

export const FLOOR_SOURCE = path.join(REPO_ROOT, 'bench', 'exit-floor.c');

interface Sample {
  wallUs: number;
  cpuUs: number;
}

export function buildFloor(ctx: BenchContext): string {
  const out = path.join(ctx.work, 'exit-floor');
  const r = spawnSync('gcc', ['-O2', '-o', out, FLOOR_SOURCE], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gcc could not build ${FLOOR_SOURCE}: ${r.stderr || r.error?.message}`);
  return out;
}

async function sparklerRun(ctx: BenchContext, config: string, count: number): Promise<Sample> {
  const p = spawnTimed(ctx.bin, ['--no-api', '--boot-timer', '--config-file', config]);
  const marks: { wall: number; cpu: number }[] = [];
  watchLines(p.child.stdout, (line) => {
    const m = /Guest-boot-time = +(\d+) us \d+ ms, +(\d+) CPU us/.exec(line);
    if (m) marks.push({ wall: Number(m[1]), cpu: Number(m[2]) });
  });
  const code = await withTimeout(p.exited, 600_000, 'the Sparkler exit loop');
  if (code !== 0 || marks.length < 2) throw new Error(`Sparkler exit loop ended with ${code} and ${marks.length} marks: ${p.stderrTail().trim()}`);
  const exits = count + 1;
  return { wallUs: (marks[1].wall - marks[0].wall) / exits, cpuUs: (marks[1].cpu - marks[0].cpu) / exits };
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
  const count = ctx.quick ? 50_000 : 200_000;
  const runs = ctx.quick ? 5 : 9;
  const floor = buildFloor(ctx);
  const codeFile = path.join(ctx.work, `exit-loop-${count}.bin`);
  fs.writeFileSync(codeFile, exitLoopCode(count));
  const config = sparklerConfig(ctx, guestFile(ctx, `sparkler-exit-loop-${count}.elf`, SPARKLER_EXIT_LOOP(count)));
  const s: Sample[] = [];
  const f: Sample[] = [];
  for (let r = 0; r < runs; r++) {
    const order = r % 2 ? ['floor', 'sparkler'] : ['sparkler', 'floor'];
    for (const who of order) {
      try {
        const x = who === 'sparkler' ? await sparklerRun(ctx, config, count) : await floorRun(floor, codeFile);
        (who === 'sparkler' ? s : f).push(x);
        ctx.progress(`exits ${who} run ${r + 1}/${runs}: ${x.wallUs.toFixed(2)} us wall, ${x.cpuUs.toFixed(2)} CPU us per exit`);
      } catch (err) {
        ctx.problems.push(`exit round trip, ${who}: ${(err as Error).message}`);
      }
    }
  }
  const variant = `${count} port writes to the UART scratch register (TypeScript device) between two MMIO marks, 1 vCPU`;
  return [
    makeEntry({ name: 'exit_roundtrip_us', unit: 'us', where: ctx.localKvm, sparkler: s.map((x) => x.wallUs), floor: f.map((x) => x.wallUs), variant: `${variant}; wall time per exit` }),
    makeEntry({ name: 'exit_roundtrip_cpu_us', unit: 'CPU us', where: ctx.localKvm, sparkler: s.map((x) => x.cpuUs), floor: f.map((x) => x.cpuUs), variant: `${variant}; CPU time of the whole process per exit (less disturbed by other load than wall time)` }),
  ];
}
