/**
 * The Sparkler process behind a MicroVM. Either a child the SDK spawned (a ChildProcess fits
 * VmmProcess as it is) or a VMM claimed from a warm pool (docs/pool.md): the pool's child, not
 * ours, so its end is seen by polling its pid and its exit status is not known here.
 */
import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { SparklerSdkError } from './errors';

export interface VmmProcess {
  readonly pid?: number;
  /** Null while it runs; also null after a pooled VMM ended (its status is the pool's to know). */
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  kill(signal?: NodeJS.Signals): boolean;
  once(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
}

/** How often a claimed VMM's pid is looked at: its end is noticed within this. */
const POLL_MS = 100;

/** A VMM claimed from a warm pool, known by its pid and its pool id (checked against its command line before a signal). */
export class ClaimedVmmProcess extends EventEmitter<{ exit: [code: null, signal: null] }> implements VmmProcess {
  readonly exitCode = null;
  readonly signalCode = null;
  private gone = false;
  private readonly timer: NodeJS.Timeout;

  constructor(readonly pid: number, private readonly id: string) {
    super();
    if (!this.isOurs()) throw new SparklerSdkError('EPOOLPID', `The pool's pid file names process ${pid}, which is not the VMM ${id}.`);
    this.timer = setInterval(() => { if (!this.isOurs()) this.markGone(); }, POLL_MS);
  }

  get ended(): boolean { return this.gone; }

  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    // A pid is reused once its process is reaped: signal only the VMM we claimed.
    if (this.gone || !this.isOurs()) { this.markGone(); return false; }
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      this.markGone(); // ended between the look and the signal
      return false;
    }
  }

  private isOurs(): boolean {
    try {
      // A zombie's cmdline is empty: it has ended, whoever reaps it.
      return fs.readFileSync(`/proc/${this.pid}/cmdline`, 'utf8').split('\0').includes(this.id);
    } catch {
      return false;
    }
  }

  private markGone(): void {
    if (this.gone) return;
    this.gone = true;
    clearInterval(this.timer);
    this.emit('exit', null, null);
  }
}

/**
 * A FIFO for a pooled VMM's serial console (PUT /serial), read as a stream. The pool's VMMs do
 * not write to the claimer's pipes, so the console comes this way. Opened read-write: with a
 * writer of our own the reader never sees end-of-file before the VMM opens it (the VMM opens it
 * non-blocking, which needs a reader to exist already).
 */
export async function openConsoleFifo(path: string, onData: (chunk: Buffer) => void): Promise<net.Socket> {
  await new Promise<void>((resolve, reject) => execFile('mkfifo', ['-m', '0600', path], (err) => (err ? reject(new SparklerSdkError('ECONSOLE', `Could not make the console FIFO ${path}: ${err.message}`)) : resolve())));
  const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  const stream = new net.Socket({ fd, readable: true, writable: false });
  stream.on('data', onData);
  stream.on('error', () => { /* the VM's console is lost, not the VM */ });
  return stream;
}
