/**
 * Process plumbing for the benchmarks: spawning a VMM with a timestamp, watching its output line
 * by line with the time each line arrived, reading /proc (smaps, per-thread CPU time), Unix
 * socket probes and small HTTP/JSON clients. Everything is timed on this process's monotonic
 * clock (performance.now()), so both VMMs are measured by the same clock the same way.
 */
import { ChildProcess, spawn, spawnSync, SpawnOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';

export const now = (): number => performance.now();

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Calls `onLine(line, arrivalMs)` for every complete line of a stream. */
export function watchLines(stream: Readable | null | undefined, onLine: (line: string, at: number) => void): void {
  if (!stream) return;
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const at = now();
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      onLine(pending.slice(0, nl).replace(/\r$/, ''), at);
      pending = pending.slice(nl + 1);
    }
    // Keep memory bounded when a guest prints a very long line without a newline.
    if (pending.length > 1 << 20) pending = pending.slice(-4096);
  });
}

export interface Spawned {
  child: ChildProcess;
  /** performance.now() just before spawn(). */
  startedAt: number;
  /** Resolves with the exit code (or 128 + signal number) once the process has ended. */
  exited: Promise<number>;
  /** The last 64 KiB of stderr, for error messages. */
  stderrTail(): string;
}

const SIGNALS: Record<string, number> = { SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGABRT: 6, SIGSEGV: 11 };

export function spawnTimed(command: string, args: string[], opts: SpawnOptions = {}): Spawned {
  const startedAt = now();
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-65536);
  });
  const exited = new Promise<number>((resolve) => {
    child.on('error', (e) => {
      err += `\n${e.message}`;
      resolve(127);
    });
    child.on('close', (code, signal) => resolve(code ?? 128 + (signal ? SIGNALS[signal] ?? 0 : 0)));
  });
  return { child, startedAt, exited, stderrTail: () => err };
}

/**
 * The environment VMM processes get: ours without NODE_EXTRA_CA_CERTS. Node reads that bundle
 * at start-up (about 50 CPU ms here, seconds in the emulated host); a VMM makes no TLS
 * connection, and a VMM host would not set it. The start-up suite measures its cost separately.
 */
export function vmmEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  if (!('NODE_EXTRA_CA_CERTS' in extra)) delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** Starts Sparkler the way a variant says (bin/sparkler, or an experiment's launcher and environment). */
export function spawnSparkler(v: { command: string; args: string[]; env: Record<string, string> }, args: string[], opts: SpawnOptions = {}): Spawned {
  return spawnTimed(v.command, [...v.args, ...args], { ...opts, env: vmmEnv(v.env) });
}

/** SIGKILL (the measurement is over; nothing to clean up in the guest) and wait for the end. */
export async function killAndWait(p: Spawned, timeoutMs = 10_000): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await withTimeout(p.exited, timeoutMs, 'process did not end after SIGKILL');
}

export class TimeoutError extends Error {}

export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TimeoutError(`timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/** Resolves with the arrival time of the first line matching `re` (and the match), or rejects when the process ends first. */
export function firstLine(p: Spawned, stream: Readable | null | undefined, re: RegExp): Promise<{ at: number; match: RegExpMatchArray }> {
  return new Promise((resolve, reject) => {
    let done = false;
    watchLines(stream, (line, at) => {
      const m = done ? null : line.match(re);
      if (m) {
        done = true;
        resolve({ at, match: m });
      }
    });
    void p.exited.then((code) => {
      if (!done) reject(new Error(`the process ended (code ${code}) before printing ${re}: ${p.stderrTail().trim().split('\n').slice(-5).join(' | ')}`));
    });
  });
}

// ---------------------------------------------------------------------------------------
// /proc

export interface Mapping {
  start: bigint;
  end: bigint;
  /** Size of the mapping in KiB. */
  sizeKiB: number;
  perms: string;
  /** Pathname column: a file, [heap], [stack], or '' for anonymous memory. */
  path: string;
  /** Fields in KiB (Rss, Pss, Private_Clean, Private_Dirty, ...). */
  kib: Record<string, number>;
}

/** Parses the text of /proc/PID/smaps. */
export function parseSmaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  let cur: Mapping | undefined;
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const start = BigInt(`0x${head[1]}`);
      const end = BigInt(`0x${head[2]}`);
      cur = { start, end, sizeKiB: Number((end - start) / 1024n), perms: head[3], path: head[4].trim(), kib: {} };
      out.push(cur);
      continue;
    }
    const field = /^(\w+):\s+(\d+) kB$/.exec(line);
    if (field && cur) cur.kib[field[1]] = Number(field[2]);
  }
  return out;
}

export interface MemoryUse {
  /** Private_Clean + Private_Dirty of the whole process, KiB. */
  privateKiB: number;
  /**
   * Private_Dirty alone, KiB: memory only this process can ever own. Private_Clean holds file
   * pages (the VMM's binary) that no other process happens to map right now, so it swings with
   * whatever else runs on the host (QEMU's from ~0 to ~31 MiB).
   */
  privateDirtyKiB: number;
  pssKiB: number;
  rssKiB: number;
  /** The same three for the guest RAM mapping(s) alone. */
  guest: { privateKiB: number; privateDirtyKiB: number; pssKiB: number; rssKiB: number };
}

const priv = (m: Mapping): number => (m.kib.Private_Clean ?? 0) + (m.kib.Private_Dirty ?? 0);

/**
 * Memory of a VMM process, with its guest RAM told apart: anonymous, writable mappings at least
 * as large as guest RAM and at most 4 MiB larger (QEMU adds alignment and guard pages; Sparkler
 * maps each region exactly).
 */
export function memoryUse(mappings: Mapping[], guestMiB: number): MemoryUse {
  const lo = guestMiB * 1024;
  const hi = lo + 4 * 1024;
  const isGuest = (m: Mapping): boolean => m.path === '' && m.perms.startsWith('rw') && m.sizeKiB >= lo && m.sizeKiB <= hi;
  const sum = (ms: Mapping[], f: (m: Mapping) => number): number => ms.reduce((n, m) => n + f(m), 0);
  const guest = mappings.filter(isGuest);
  return {
    privateKiB: sum(mappings, priv),
    privateDirtyKiB: sum(mappings, (m) => m.kib.Private_Dirty ?? 0),
    pssKiB: sum(mappings, (m) => m.kib.Pss ?? 0),
    rssKiB: sum(mappings, (m) => m.kib.Rss ?? 0),
    guest: { privateKiB: sum(guest, priv), privateDirtyKiB: sum(guest, (m) => m.kib.Private_Dirty ?? 0), pssKiB: sum(guest, (m) => m.kib.Pss ?? 0), rssKiB: sum(guest, (m) => m.kib.Rss ?? 0) },
  };
}

export function readMemoryUse(pid: number, guestMiB: number): MemoryUse {
  return memoryUse(parseSmaps(fs.readFileSync(`/proc/${pid}/smaps`, 'utf8')), guestMiB);
}

/** CPU time used so far by every live thread of a process, in ns (schedstat: exact, not in ticks). */
export function processCpuNs(pid: number): number {
  let total = 0;
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return NaN;
  }
  for (const t of tasks) {
    try {
      total += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return total;
}

// ---------------------------------------------------------------------------------------
// Unix sockets

/** True once something accepts a connection on the socket path. */
export function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Polls until the socket accepts; resolves with the time of the successful connect. */
export async function waitForSocket(path: string, p: Spawned, timeoutMs: number, intervalMs = 1): Promise<number> {
  const deadline = now() + timeoutMs;
  let ended = false;
  void p.exited.then(() => { ended = true; });
  while (now() < deadline) {
    if (ended) throw new Error(`the process ended before its socket ${path} accepted: ${p.stderrTail().trim().split('\n').slice(-3).join(' | ')}`);
    if (fs.existsSync(path) && (await canConnect(path))) return now();
    await sleep(intervalMs);
  }
  throw new TimeoutError(`socket ${path} did not accept within ${timeoutMs} ms`);
}

export interface HttpReply {
  status: number;
  body: string;
}

/** One HTTP/1.1 request over a Unix socket (a fresh connection each time). */
export function httpUnix(socketPath: string, method: string, path: string, body?: unknown): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ socketPath, method, path, headers: data ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** A minimal QMP client: greeting, then one command at a time. */
export class Qmp {
  private buf = '';
  private waiters: ((msg: Record<string, unknown>) => void)[] = [];
  private queue: Record<string, unknown>[] = [];

  private constructor(private readonly sock: net.Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as Record<string, unknown>;
        if ('event' in msg) continue;
        const w = this.waiters.shift();
        if (w) w(msg);
        else this.queue.push(msg);
      }
    });
  }

  static connect(path: string): Promise<Qmp> {
    return new Promise((resolve, reject) => {
      const s = net.connect(path);
      s.once('connect', () => resolve(new Qmp(s)));
      s.once('error', reject);
    });
  }

  /** The next non-event message (the greeting first). */
  next(): Promise<Record<string, unknown>> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Sends a command and resolves with its reply. */
  async command(execute: string, args?: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.sock.write(`${JSON.stringify(args ? { execute, arguments: args } : { execute })}\n`);
    const reply = await this.next();
    if ('error' in reply) throw new Error(`QMP ${execute} failed: ${JSON.stringify(reply.error)}`);
    return reply;
  }

  close(): void {
    this.sock.destroy();
  }
}

/**
 * A FIFO opened read-write (so neither side's open ever blocks) and read as a stream: QEMU
 * writes its log (-D) into it, and we see each line when QEMU writes it.
 */
export function openFifo(path: string): net.Socket {
  fs.rmSync(path, { force: true });
  const r = spawnSync('mkfifo', ['-m', '600', path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mkfifo ${path} failed: ${r.stderr || r.error?.message}`);
  const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  return new net.Socket({ fd, readable: true, writable: false });
}
