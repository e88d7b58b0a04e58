/**
 * `sparkler emuhost [--memory MiB] [--cpus N] [--timeout SECONDS] -- CMD [ARGS...]`
 * `sparkler emuhost --check` | `sparkler emuhost --build`
 * Runs CMD in the emulated KVM host, in the same working directory and environment, and exits
 * with CMD's exit code (124 on timeout, 125 if the emulated host itself failed).
 */
import { SparklerError } from '../errors';
import { checkEmuHost } from './check';
import { prepareImage } from './image';
import { runInEmuHost } from './run';

const USAGE = `usage: sparkler emuhost [--memory MiB] [--cpus N] [--timeout SECONDS] [--rw DIR]... -- CMD [ARGS...]
       sparkler emuhost --check     say whether the emulated KVM host can run here
       sparkler emuhost --build     build its kernel and initramfs into the cache now
`;

interface Parsed {
  mode: 'run' | 'check' | 'build' | 'help';
  memoryMiB?: number;
  cpus?: number;
  timeoutMs?: number;
  writable: string[];
  command: string[];
}

export function parseArgs(argv: string[]): Parsed {
  const p: Parsed = { mode: 'run', writable: [], command: [] };
  const num = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < min) throw new SparklerError('EUSAGE', `${flag} needs a number >= ${min}.`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') { p.command = argv.slice(i + 1); break; }
    if (a === '--check') p.mode = 'check';
    else if (a === '--build') p.mode = 'build';
    else if (a === '--help' || a === '-h') p.mode = 'help';
    else if (a === '--memory') p.memoryMiB = Math.floor(num(a, argv[++i], 256));
    else if (a === '--cpus') p.cpus = Math.floor(num(a, argv[++i], 1));
    else if (a === '--timeout') p.timeoutMs = Math.round(num(a, argv[++i], 0) * 1000);
    else if (a === '--rw') p.writable.push(argv[++i] ?? '');
    else if (a.startsWith('-')) throw new SparklerError('EUSAGE', `unknown option ${a}\n${USAGE}`);
    else { p.command = argv.slice(i); break; }
  }
  return p;
}

export async function run(argv: string[]): Promise<number> {
  let p: Parsed;
  try {
    p = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`sparkler emuhost: ${(e as Error).message}\n`);
    return 2;
  }
  if (p.mode === 'help') { process.stdout.write(USAGE); return 0; }
  if (p.mode === 'check') {
    const r = checkEmuHost();
    for (const i of r.items) process.stdout.write(`${i.ok ? 'ok  ' : 'MISSING'} ${i.what}: ${i.detail}\n`);
    process.stdout.write(r.canRun ? 'emuhost can run here\n' : 'emuhost cannot run here\n');
    return r.canRun ? 0 : 1;
  }
  try {
    if (p.mode === 'build') {
      const img = await prepareImage();
      process.stdout.write(`${img.dir}\n`);
      return 0;
    }
    if (p.command.length === 0) { process.stderr.write(USAGE); return 2; }
    await prepareImage(); // before the handlers below: Ctrl-C during a build just stops us
    // Ctrl-C or a kill stops the emulated host (and cleans up) instead of leaving it running.
    const ac = new AbortController();
    const onSignal = (): void => ac.abort();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const r = await runInEmuHost(p.command, {
        memoryMiB: p.memoryMiB, cpus: p.cpus, timeoutMs: p.timeoutMs, writable: p.writable, signal: ac.signal,
      });
      return r.code;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  } catch (e) {
    process.stderr.write(`sparkler emuhost: ${e instanceof Error ? e.message : String(e)}\n`);
    return e instanceof SparklerError ? 1 : 125;
  }
}
