/**
 * `node dist/jailer/bench.js [runs]` (root, /dev/kvm): what isolation costs.
 * 1. Start-up: process spawn -> API socket accepting, medians of alternating runs of
 *    bin/sparkler alone, the jailer exec'ing it in place, and the jailer with --new-pid-ns.
 * 2. The exit round trip (the tiny guest's UART scratch-register loop timed by its boot-timer
 *    marks, as src/bench/exits.ts) with the default seccomp filter and with --no-seccomp.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { canConnect } from '../bench/proc';
import { SPARKLER_MARK_LINE } from '../bench/context';
import { SPARKLER_EXIT_LOOP } from '../bench/guests';

const HOME = path.resolve(__dirname, '..', '..');
const SPARKLER = path.join(HOME, 'bin', 'sparkler');
const JAILER = path.join(HOME, 'bin', 'sparkler-jailer');
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function untilSocket(cmd: string, args: string[], sock: string): Promise<{ ms: number; pid: () => number | undefined }> {
  const t0 = performance.now();
  const child = spawn(cmd, args, { stdio: 'ignore' });
  for (;;) {
    if (fs.existsSync(sock) && (await canConnect(sock))) break;
    if (performance.now() - t0 > 30_000) throw new Error(`no socket at ${sock}`);
    await new Promise((r) => setTimeout(r, 1));
  }
  return { ms: performance.now() - t0, pid: () => child.pid };
}

function killPidFile(file: string): void {
  try { process.kill(Number(fs.readFileSync(file, 'utf8')), 'SIGKILL'); } catch { /* gone */ }
}

async function startup(runs: number, work: string): Promise<Record<string, number>> {
  const times: Record<string, number[]> = { plain: [], jailed: [], 'jailed-new-pid-ns': [] };
  for (let i = 0; i < runs; i++) {
    const plainSock = path.join(work, `plain-${i}.sock`);
    const p = await untilSocket(SPARKLER, ['--api-sock', plainSock], plainSock);
    times.plain.push(p.ms);
    process.kill(p.pid()!, 'SIGKILL');
    for (const [name, extra] of [['jailed', []], ['jailed-new-pid-ns', ['--new-pid-ns']]] as const) {
      const id = `bench-${name}-${i}`;
      const root = path.join(work, 'sparkler', id, 'root');
      const j = await untilSocket(JAILER, ['--id', id, '--exec-file', SPARKLER, '--uid', '1234', '--gid', '1234', '--chroot-base-dir', work, ...extra, '--', '--api-sock', 'api.sock'], path.join(root, 'api.sock'));
      times[name].push(j.ms);
      killPidFile(path.join(root, 'sparkler.pid'));
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}

export async function exitLoop(work: string, count: number, flags: string[]): Promise<number> {
  const kernel = path.join(work, `exit-loop-${count}.elf`);
  if (!fs.existsSync(kernel)) fs.writeFileSync(kernel, SPARKLER_EXIT_LOOP(count));
  const config = path.join(work, `exit-loop-${count}.json`);
  fs.writeFileSync(config, JSON.stringify({ 'boot-source': { kernel_image_path: kernel, boot_args: 'reboot=k' }, 'machine-config': { vcpu_count: 1, mem_size_mib: 128 } }));
  const child = spawn(SPARKLER, ['--no-api', '--boot-timer', '--config-file', config, ...flags], { stdio: ['ignore', 'pipe', 'ignore'] });
  const marks: number[] = [];
  let buf = '';
  child.stdout!.on('data', (c) => {
    buf += c;
    for (const line of buf.split('\n')) {
      const m = SPARKLER_MARK_LINE.exec(line);
      if (m) marks.push(Number(m[1]));
    }
    buf = buf.slice(buf.lastIndexOf('\n') + 1);
  });
  await new Promise((r) => child.on('exit', r));
  if (marks.length < 2) throw new Error('the exit loop gave no marks');
  return (marks[1] - marks[0]) / (count + 1);
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 9);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-jail-bench-'));
  fs.chmodSync(work, 0o755);
  try {
    const s = await startup(runs, work);
    process.stdout.write(`start-up, spawn -> API socket accepting, median of ${runs} (ms): ${Object.entries(s).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}\n`);
    const filtered: number[] = [];
    const off: number[] = [];
    for (let i = 0; i < runs; i++) {
      filtered.push(await exitLoop(work, 20000, []));
      off.push(await exitLoop(work, 20000, ['--no-seccomp']));
    }
    process.stdout.write(`exit round trip, median of ${runs} runs of 20000 exits (us): seccomp ${median(filtered).toFixed(2)}, --no-seccomp ${median(off).toFixed(2)}\n`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (require.main === module) void main();
