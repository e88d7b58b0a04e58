/**
 * Runs one command in the emulated KVM host: writes the run directory (cmd.sh, mounts), boots
 * QEMU, streams the command's stdout/stderr (files in the run directory, written over 9p, which
 * is synchronous, so nothing is lost at power-off and no kernel message is mixed in) and returns
 * the exit code the init wrote.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareImage } from './image';
import { HeartbeatWatch } from './heartbeat';
import { askMonitor, summarizeRegisters } from './monitor';
import { findQemu, MARKER, monitorSocket, qemuArgs } from './qemu';
import { commandScript, mountsFile, writableShares, type ShareModel } from './script';
import { which } from './tools';

export interface RunOptions {
  cwd?: string;
  /** Added to (and overriding) the caller's environment. */
  env?: Record<string, string>;
  memoryMiB?: number;
  cpus?: number;
  /** 'inherit' streams to our stdout/stderr; 'pipe' returns them as strings. */
  stdio?: 'inherit' | 'pipe';
  /** Kills the emulated host after this long; the result is then code 124. */
  timeoutMs?: number;
  /** More host directories to share writable (cwd, /tmp and /var/tmp always are). */
  writable?: string[];
  /** Aborting kills the emulated host; the result is then code 130. */
  signal?: AbortSignal;
  /**
   * Times to start the emulated host again, from scratch, when it wedges (see WEDGE_SIGNS) or
   * dies without the command's exit code (its kernel panicked);
   * only for commands that can safely run twice. Default 0: a wedged host ends the run at once
   * with HOST_FAILURE_CODE instead of waiting for the timeout.
   */
  retriesIfWedged?: number;
  /**
   * With retriesIfWedged: each start of the emulated host gets at most this long, and one that
   * runs out counts as wedged too (a host that hangs without a stall report on its console, also
   * seen). Set it well above the command's normal time; timeoutMs still bounds the whole run.
   */
  attemptTimeoutMs?: number;
  /**
   * With retriesIfWedged: after an attempt that ended with code 0, says whether what the command
   * left behind (its output files) shows a fault of the emulated host's, such as a guest that
   * triple-faulted there; such an attempt is run again like a wedged one, and says so on stderr.
   */
  faultedIf?: () => string | undefined;
  /**
   * With retriesIfWedged, an attempt in which the emulated host's KVM saw a nested guest
   * triple-fault (its init traces KVM_EXIT_SHUTDOWN) is stopped as soon as that is seen and run
   * again; the last attempt runs on to its end. True keeps such faults as part of what the
   * command reports (the soak counts the guests it loses) and reruns nothing for them.
   */
  keepGuestFaults?: boolean;
  /**
   * With retriesIfWedged: called before an attempt is run again; returns what the
   * dropped attempt left that says where it was (the tails of its boots' consoles, say), which
   * is printed with the rerun note so that a CI log shows what stalled or faulted.
   */
  beforeRetry?: () => string | undefined;
}

export interface RunResult {
  code: number;
  stdout?: string;
  stderr?: string;
  /** Nested guests that triple-faulted in the emulated host during the (last) attempt. */
  guestFaults?: number;
}

export const TIMEOUT_CODE = 124;
/** The emulated host failed (did not boot, crashed): no exit code from the command. */
export const HOST_FAILURE_CODE = 125;

/**
 * What the emulated host's kernel prints when one of its CPUs stops coming back: a TCG vCPU stuck
 * in its nested guest (QEMU's nested SVM emulation sometimes misses the host's timer there and
 * the L1 CPU never runs again). Seen a few times in a few hundred Linux boots, with either VMM
 * inside; the host never recovers, so waiting for the timeout only wastes it.
 */
export const WEDGE_SIGNS = /rcu: INFO: rcu_(?:preempt|sched) detected stalls|watchdog: BUG: soft lockup/;
/** How often the console is looked at for WEDGE_SIGNS. */
const WEDGE_CHECK_MS = 2000;

/** True when the console log (kept by QEMU in a file) shows that the emulated host wedged. */
export function consoleShowsWedge(consoleLog: string): boolean {
  return WEDGE_SIGNS.test(consoleLog);
}

/** True inside the emulated host (the env var cmd.sh sets, or the kernel command line marker). */
export function insideEmuHost(): boolean {
  if (process.env.SPARKLER_EMUHOST === '1') return true;
  try {
    return readFileSync('/proc/cmdline', 'utf8').split(/\s+/).includes(MARKER);
  } catch {
    return false;
  }
}

/** Copies what has been appended to a file since the last call to a sink. */
class Tail {
  private fd: number;
  private pos = 0;
  private buf = Buffer.alloc(64 * 1024);
  constructor(path: string, private sink: (b: Buffer) => void) {
    this.fd = openSync(path, 'r');
  }
  pump(): void {
    for (;;) {
      const n = readSync(this.fd, this.buf, 0, this.buf.length, this.pos);
      if (n <= 0) return;
      this.pos += n;
      this.sink(Buffer.from(this.buf.subarray(0, n)));
    }
  }
  close(): void {
    this.pump();
    closeSync(this.fd);
  }
}

/**
 * /tmp and /var/tmp are shared 'mapped-xattr' so that Unix sockets can be bound there (see
 * ShareModel), if the host filesystem takes user xattrs (tmpfs only since Linux 6.6).
 * SPARKLER_EMUHOST_TMP_MODEL=none|mapped-xattr overrides.
 */
function scratchModel(path: string): ShareModel {
  const env = process.env.SPARKLER_EMUHOST_TMP_MODEL;
  if (env === 'none' || env === 'mapped-xattr') return env;
  let fstype = '';
  let best = -1;
  try {
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      // fields: id parent major:minor root mountpoint options [optional...] - fstype source ...
      const f = line.split(' ');
      const mp = f[4] ?? '';
      const dash = f.indexOf('-');
      if (dash < 0) continue;
      if ((path === mp || path.startsWith(mp === '/' ? '/' : mp + '/')) && mp.length > best) {
        best = mp.length;
        fstype = f[dash + 1] ?? '';
      }
    }
  } catch {
    return 'none';
  }
  const [maj, min] = release().split('.').map(Number) as [number, number];
  const oldTmpfs = fstype === 'tmpfs' && (maj < 6 || (maj === 6 && min < 6));
  return oldTmpfs ? 'none' : 'mapped-xattr';
}

/** A reader that went away (EPIPE) must not crash us and leave QEMU behind: drop the output. */
function writeQuietly(stream: NodeJS.WriteStream, b: Buffer): void {
  if (stream.listenerCount('error') === 0) stream.on('error', () => undefined);
  if (!stream.destroyed) stream.write(b);
}

/**
 * The caller's environment, less NODE_EXTRA_CA_CERTS: the emulated host has no network, so
 * TLS roots are useless there, and loading them costs every node start 2-5 s under TCG
 * (measured). Passing it in opts.env still sets it.
 */
function inheritedEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** Run directories left by callers that were killed (SIGKILL leaves no chance to clean up). */
function removeStaleRunDirs(): void {
  try {
    for (const n of readdirSync(tmpdir())) {
      const pid = /^sparkler-emuhost-(\d+)-/.exec(n)?.[1];
      if (pid === undefined || Number(pid) === process.pid) continue;
      try {
        process.kill(Number(pid), 0);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ESRCH') rmSync(join(tmpdir(), n), { recursive: true, force: true });
      }
    }
  } catch {
    // best effort
  }
}

/** Defaults a machine can tune without code: e.g. 1 vCPU boots faster on a loaded 2-CPU host. */
function envNumber(name: string): number | undefined {
  const n = Number(process.env[name]);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

function realOrSelf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

export async function runInEmuHost(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  if (argv.length === 0) throw new Error('emuhost: no command given');
  if (insideEmuHost()) return runHere(argv, opts);
  const deadline = opts.timeoutMs !== undefined ? Date.now() + opts.timeoutMs : undefined;
  let earlier = '';
  for (let attempt = 0; ; attempt++) {
    const left = deadline !== undefined ? Math.max(1, deadline - Date.now()) : undefined;
    const capped = opts.retriesIfWedged && opts.attemptTimeoutMs !== undefined && (left === undefined || opts.attemptTimeoutMs < left);
    const timeoutMs = capped ? opts.attemptTimeoutMs : left;
    const mayRetry = attempt < (opts.retriesIfWedged ?? 0);
    const rerunGuestFaults = (opts.retriesIfWedged ?? 0) > 0 && !opts.keepGuestFaults;
    const r = await runOnce(argv, { ...opts, timeoutMs, stopOnGuestFault: mayRetry && rerunGuestFaults });
    const guestFault = rerunGuestFaults && r.guestFaults > 0 ? `a guest triple-faulted in the emulated host (its KVM saw ${r.guestFaults} shutdown exit${r.guestFaults > 1 ? 's' : ''})` : undefined;
    const fault = guestFault ?? (r.code === 0 && opts.retriesIfWedged ? opts.faultedIf?.() : undefined);
    const stuck = r.wedged || (capped && r.timedOut) || fault !== undefined;
    const last = !stuck || !mayRetry || (deadline !== undefined && deadline - Date.now() < 60_000);
    if (last) {
      if (guestFault) {
        process.stderr.write(`emuhost: ${guestFault}\n`);
        if (opts.stdio === 'pipe') r.stderr = `${r.stderr ?? ''}emuhost: ${guestFault}\n`;
      }
      return opts.stdio === 'pipe' ? { code: r.code, stdout: r.stdout, stderr: earlier + (r.stderr ?? ''), guestFaults: r.guestFaults } : { code: r.code, guestFaults: r.guestFaults };
    }
    // The attempt's output is dropped (the command runs again from the start); its notes stay,
    // with the last lines it printed and what the caller finds it left, to say where it was.
    const report = [
      ...(opts.stdio === 'pipe' ? r.notes : []),
      opts.stdio === 'pipe' ? outputTail('the attempt\'s last output', `${r.stdout ?? ''}\n${r.commandStderr ?? ''}`) : '',
      opts.beforeRetry?.() ?? '',
    ].filter((t) => t.trim() !== '').join('\n');
    const again = `${fault ? `emuhost: ${fault}\n` : ''}${report ? `${report}\n` : ''}emuhost: starting the emulated host again\n`;
    if (opts.stdio === 'pipe') earlier += again;
    // Said at once even when the caller pipes: a rerun that then passes still shows in the log.
    process.stderr.write(again);
  }
}

/** The last `n` lines of `text`, indented under a heading, or '' when there are none. */
export function outputTail(heading: string, text: string, n = 20): string {
  const lines = text.split('\n').filter((l) => l.trim() !== '').slice(-n);
  return lines.length === 0 ? '' : `emuhost: ${heading}:\n${lines.map((l) => `  | ${l}`).join('\n')}`;
}

interface Attempt extends RunResult {
  wedged?: boolean;
  timedOut?: boolean;
  guestFaults: number;
  /** What the emulated host said about the attempt (why it was stopped, its vCPUs), first the why. */
  notes: string[];
  /** With stdio 'pipe': the command's own stderr, without the notes. */
  commandStderr?: string;
}

async function runOnce(argv: string[], opts: RunOptions & { stopOnGuestFault: boolean }): Promise<Attempt> {
  const qemu = findQemu();
  const image = await prepareImage();
  if (opts.signal?.aborted) return { code: 130, guestFaults: 0, notes: [] };
  const cwd = realOrSelf(opts.cwd ?? process.cwd());
  const env = { ...inheritedEnv(), ...opts.env, SPARKLER_EMUHOST: '1' };
  const scratch = new Set(['/tmp', '/var/tmp'].map(realOrSelf));
  const shares = writableShares(['/tmp', '/var/tmp', cwd, ...(opts.writable ?? [])].map(realOrSelf),
    (p) => (scratch.has(p) ? scratchModel(p) : 'none'));

  removeStaleRunDirs();
  const runDir = mkdtempSync(join(tmpdir(), `sparkler-emuhost-${process.pid}-`));
  const file = (n: string): string => join(runDir, n);
  const pipe = opts.stdio === 'pipe';
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const notes: string[] = [];
  const note = (msg: string): void => {
    notes.push(msg);
    if (!pipe) process.stderr.write(msg + '\n');
  };
  try {
    writeFileSync(file('cmd.sh'), commandScript({ argv, cwd, env, umask: process.umask() }));
    writeFileSync(file('mounts'), mountsFile(shares));
    writeFileSync(file('stdout'), '');
    writeFileSync(file('stderr'), '');
    const tails = [
      new Tail(file('stdout'), pipe ? (b) => out.push(b) : (b) => writeQuietly(process.stdout, b)),
      new Tail(file('stderr'), pipe ? (b) => err.push(b) : (b) => writeQuietly(process.stderr, b)),
    ];
    const args = qemuArgs({
      kernel: image.kernel, initrd: image.initrd, runDir, consoleLog: file('console.log'), shares,
      memoryMiB: opts.memoryMiB ?? envNumber('SPARKLER_EMUHOST_MEMORY') ?? 2048,
      cpus: opts.cpus ?? envNumber('SPARKLER_EMUHOST_CPUS') ?? 2,
    });
    // setpriv --pdeathsig: QEMU dies with us even if we are SIGKILLed, instead of running on.
    const setpriv = which('setpriv');
    const child = setpriv
      ? spawn(setpriv, ['--pdeathsig', 'KILL', '--', qemu, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn(qemu, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let qemuErr = '';
    child.stderr?.on('data', (d: Buffer) => { qemuErr += d.toString(); });
    let stopped: 'timeout' | 'abort' | 'wedged' | 'guest-fault' | 'stalled' | undefined;
    let vcpuState: string | undefined;
    // Before the kill, the emulated host's vCPUs as its monitor sees them (at most 2 s): a stall
    // or hang of the emulator leaves nothing else to go on.
    const stop = (why: NonNullable<typeof stopped>): void => {
      if (stopped) return;
      stopped = why;
      askMonitor(monitorSocket(runDir), ['info registers -a'], 2000)
        .then(([regs]) => { vcpuState = summarizeRegisters(regs ?? ''); }, (e: Error) => { vcpuState = `(not read: ${e.message})`; })
        .finally(() => child.kill('SIGKILL'));
    };
    const timer = opts.timeoutMs !== undefined ? setTimeout(() => stop('timeout'), opts.timeoutMs) : undefined;
    const onAbort = (): void => stop('abort');
    opts.signal?.addEventListener('abort', onAbort);
    if (opts.signal?.aborted) stop('abort');
    const poll = pipe ? undefined : setInterval(() => tails.forEach((t) => t.pump()), 30);
    const heartbeat = new HeartbeatWatch();
    let stallWhy = '';
    const wedgeWatch = setInterval(() => {
      try {
        if (consoleShowsWedge(readFileSync(file('console.log'), 'utf8'))) stop('wedged');
      } catch {
        // no console yet
      }
      // The attempt will be rerun anyway: waiting for the command to notice its dead guest only costs time.
      if (opts.stopOnGuestFault && guestFaultsIn(file('guest-faults')) > 0) stop('guest-fault');
      if (opts.stopOnGuestFault && !stopped) {
        const stall = heartbeat.look(readOrUndefined(file('heartbeat')), Date.now());
        if (stall) {
          stallWhy = stall.why;
          stop('stalled');
        }
      }
    }, WEDGE_CHECK_MS);
    const exit = await new Promise<{ how: string; error?: Error }>((resolve) => {
      child.on('error', (e) => resolve({ how: `failed to start: ${e.message}`, error: e }));
      child.on('close', (code, signal) => resolve({ how: signal ? `was killed by ${signal}` : `exited with ${code}` }));
    });
    if (timer) clearTimeout(timer);
    if (poll) clearInterval(poll);
    clearInterval(wedgeWatch);
    opts.signal?.removeEventListener('abort', onAbort);
    tails.forEach((t) => t.close());

    // TCG lacks a few EPYC-Rome features and says so at every start: noise, not a failure cause.
    qemuErr = qemuErr.split('\n').filter((l) => !l.includes("TCG doesn't support requested feature")).join('\n');
    let code: number;
    let hostDied = false;
    let reported: string | undefined;
    try {
      reported = readFileSync(file('exit'), 'utf8').trim();
    } catch {
      reported = undefined;
    }
    if (stopped === 'wedged') {
      const stall = readFileSync(file('console.log'), 'utf8').split('\n').filter((l) => WEDGE_SIGNS.test(l)).slice(0, 1).join('');
      note(`emuhost: the emulated host wedged (its kernel reports "${stall.trim()}"): a CPU of the emulated host stopped running, an emulator fault, not the command's; killed it`);
      code = HOST_FAILURE_CODE;
    } else if (stopped === 'stalled') {
      note(`emuhost: the emulated host stalled: ${stallWhy}; killed it`);
      code = HOST_FAILURE_CODE;
    } else if (stopped === 'timeout') {
      note(`emuhost: timed out after ${opts.timeoutMs} ms; the emulated host was killed`);
      code = TIMEOUT_CODE;
    } else if (stopped === 'abort') {
      code = 130;
    } else if (stopped === 'guest-fault') {
      code = HOST_FAILURE_CODE;
    } else if (reported !== undefined && /^\d+$/.test(reported)) {
      code = Number(reported);
    } else {
      let consoleTail = '';
      try {
        consoleTail = readFileSync(file('console.log'), 'utf8').split('\n').slice(-15).join('\n').trim();
      } catch {
        // QEMU did not get as far as creating it
      }
      // Its kernel panicked (seen: a stack guard page hit in a vCPU thread, the GS base wrong after a
      // nested guest's exit) or QEMU died: the emulator's failure, retried like a wedge.
      hostDied = true;
      note(`emuhost: the emulated host stopped without reporting an exit code (QEMU ${exit.how}).`
        + (qemuErr.trim() ? `\nQEMU said: ${qemuErr.trim()}` : '')
        + (consoleTail ? `\nLast console lines:\n${consoleTail}` : ''));
      code = HOST_FAILURE_CODE;
    }
    if (stopped && vcpuState) note(`emuhost: the emulated host's vCPUs when it was stopped (${stopped}):\n${vcpuState}`);
    const wedged = stopped === 'wedged' || stopped === 'stalled' || hostDied;
    const timedOut = stopped === 'timeout';
    const guestFaults = guestFaultsIn(file('guest-faults'));
    if (!pipe) return { code, wedged, timedOut, guestFaults, notes };
    const commandStderr = Buffer.concat(err).toString();
    const stderr = commandStderr + notes.map((n) => `${n}\n`).join('');
    return { code, wedged, timedOut, guestFaults, notes, stdout: Buffer.concat(out).toString(), stderr, commandStderr };
  } finally {
    if (!process.env.SPARKLER_EMUHOST_KEEP) rmSync(runDir, { recursive: true, force: true });
    else process.stderr.write(`emuhost: kept ${runDir} (until a later run finds its owner gone)\n`);
  }
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The KVM_EXIT_SHUTDOWN events the emulated host's init traced into `file` (guest/emuhost/init.sh). */
export function guestFaultsIn(file: string): number {
  try {
    return readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('kvm_userspace_exit')).length;
  } catch {
    return 0;
  }
}

/** Already inside the emulated host: nesting another TCG host would only be slower, so run here. */
function runHere(argv: string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve) => {
    const pipe = opts.stdio === 'pipe';
    const child = spawn(argv[0] as string, argv.slice(1), {
      cwd: opts.cwd, env: { ...process.env, ...opts.env },
      stdio: ['ignore', pipe ? 'pipe' : 'inherit', pipe ? 'pipe' : 'inherit'],
      timeout: opts.timeoutMs, killSignal: 'SIGKILL', signal: opts.signal,
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    let done = false;
    const finish = (code: number): void => {
      if (done) return;
      done = true;
      resolve(pipe ? { code, stdout, stderr } : { code });
    };
    child.on('error', (e) => {
      const msg = `emuhost: ${argv[0]}: ${e.message}\n`;
      if (pipe) stderr += msg;
      else process.stderr.write(msg);
      finish((e as NodeJS.ErrnoException).code === 'ENOENT' ? 127 : 126);
    });
    child.on('close', (code, sig) => {
      finish(sig === 'SIGKILL' && opts.timeoutMs !== undefined ? TIMEOUT_CODE : code ?? 128);
    });
  });
}
