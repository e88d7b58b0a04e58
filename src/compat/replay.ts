/**
 * What the orchestrator replays (src/compat/<orchestrator>/) share: a real bin/sparkler or
 * bin/sparkler-jailer process, an API client that keeps the log of the calls it made (so a test
 * can assert the exact sequence an orchestrator sends and what each call answered), and the
 * FIFOs that Kata and firecracker-go-sdk hand the VMM for its logger and metrics.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { request, HttpResult } from '../api/testing';
import { waitFor } from '../testing/wait';

export const HOME = path.resolve(__dirname, '..', '..');
export const SPARKLER = path.join(HOME, 'bin', 'sparkler');
export const JAILER = path.join(HOME, 'bin', 'sparkler-jailer');

export interface Proc {
  child: ChildProcess;
  out: () => string;
  exit: Promise<number | null>;
}

/** Starts `file` with `args`, collecting stdout and stderr together. */
export function startProcess(file: string, args: readonly string[]): Proc {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c) => { out += c; });
  child.stderr!.on('data', (c) => { out += c; });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))));
  return { child, out: () => out, exit };
}

export interface Call {
  method: string;
  path: string;
  status: number;
  /** The fault message of a refused call. */
  fault?: string;
}

/** An API client over one socket that records every call (`calls`) in order. */
export class ReplayApi {
  readonly calls: Call[] = [];
  constructor(readonly socket: string) {}

  async send(method: string, p: string, body?: unknown): Promise<HttpResult> {
    const r = await request(this.socket, method, p, body);
    const fault = (r.json as { fault_message?: string } | undefined)?.fault_message;
    this.calls.push({ method, path: p, status: r.status, ...(fault ? { fault } : {}) });
    return r;
  }

  /** The calls as `METHOD path status` lines (a failed call carries its fault message). */
  transcript(): string {
    return this.calls.map((c) => `${c.method} ${c.path} ${c.status}${c.fault ? ` ${c.fault}` : ''}`).join('\n');
  }

  /** The calls that did not answer 2xx. */
  failures(): Call[] {
    return this.calls.filter((c) => c.status < 200 || c.status > 299);
  }
}

/** A FIFO opened for reading before the VMM starts, as Kata (fcListenToFifo) and go-sdk do. */
export class FifoReader {
  private data = '';
  private readonly socket: net.Socket;

  constructor(readonly file: string) {
    const r = spawnSync('mkfifo', ['-m', '0600', file], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`mkfifo ${file} failed: ${r.stderr}`);
    // O_NONBLOCK: the open does not wait for a writer (containerd/fifo opens it this way).
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    this.socket = new net.Socket({ fd, readable: true, writable: false });
    this.socket.on('data', (c) => { this.data += c.toString(); });
    this.socket.on('error', () => {});
  }

  text(): string {
    return this.data;
  }

  lines(): string[] {
    return this.data.split('\n').filter((l) => l.length > 0);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The threads of `pid` by name (/proc/<pid>/task/<tid>/comm), as Kata's GetThreadIDs reads them. */
export function threadNames(pid: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      out.set(Number(tid), fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim());
    } catch { /* the thread ended */ }
  }
  return out;
}

/** The files `pid` holds open (readlink of /proc/<pid>/fd/*). */
export function openFiles(pid: number): string[] {
  const out: string[] = [];
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try { out.push(fs.readlinkSync(`/proc/${pid}/fd/${fd}`)); } catch { /* closed meanwhile */ }
  }
  return out;
}

/** Waits for `proc` to print Firecracker's "API server started." line (or to exit). */
export async function apiStarted(proc: Proc, ms = 30_000): Promise<void> {
  await waitFor(() => /API server started\./.test(proc.out()) || proc.child.exitCode !== null, 'API server started', ms);
  if (proc.child.exitCode !== null) throw new Error(`the VMM exited with ${proc.child.exitCode} before its API started:\n${proc.out()}`);
}

/**
 * A TAP named `name`, made the way orchestrators do before the VMM starts (root and ip(8)
 * needed), with `mac` on the host side; undefined where it cannot be made. `remove` deletes it.
 */
export function makeTap(name: string, mac?: string): { name: string; remove: () => void } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const r = spawnSync('sh', ['-c', `ip tuntap add dev ${name} mode tap${mac ? ` && ip link set ${name} address ${mac}` : ''} && ip link set ${name} up`]);
  if (r.status !== 0) {
    spawnSync('ip', ['link', 'del', name]);
    return undefined;
  }
  return { name, remove: () => { spawnSync('ip', ['link', 'del', name]); } };
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}
