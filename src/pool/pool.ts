/**
 * A warm pool of idle VMM processes (what serverless platforms do with Firecracker: start the
 * process before the request comes). It keeps `size` VMMs whose API answers in idle/, starts a
 * replacement as soon as one is claimed (claim.ts) or dies, and on stop ends the idle and
 * starting ones; claimed VMMs belong to their clients and run on. Each VMM is started with its
 * own process group (detached), so a signal to the pool's group does not reach claimed VMs.
 */
import { ChildProcess, spawn as spawnProcess, SpawnOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SparklerError } from '../errors';
import { listSlots, pidPath, preparePoolDir, slotPath, SlotState } from './layout';
import { DEFAULT_CHROOT_BASE } from '../jailer/args';
import { chrootDir } from '../jailer/layout';
import { apiAnswers } from './probe';


export const SPARKLER_BIN = path.resolve(__dirname, '..', '..', 'bin', 'sparkler');
export const SPARKLER_JAILER_BIN = path.resolve(__dirname, '..', '..', 'bin', 'sparkler-jailer');

/**
 * Pre-jailed VMMs: each is started by the jailer (Firecracker's flags), so a claim hands out a
 * VMM already in its chroot, namespaces, cgroup and uid. Its API socket is `api.sock` in the
 * chroot; the pool's slot is a symlink to it, which the claim renames like any slot (connect(2)
 * follows it, and a symlink can be renamed wherever the chroot lives).
 */
export interface PoolJail {
  uid: number;
  gid: number;
  /** --chroot-base-dir (default /srv/jailer). */
  chrootBaseDir?: string;
  /** More jailer flags (--cgroup, --netns, --resource-limit, --new-pid-ns is refused: the pid would not be the VMM's). */
  jailerArgs?: readonly string[];
  /** The jailer executable; bin/sparkler-jailer by default. */
  jailer?: string;
}

export interface PoolOptions {
  dir: string;
  size: number;
  /** Flags for every VMM beyond --api-sock and --id (e.g. --level Info, --boot-timer). */
  vmmArgs?: readonly string[];
  /** The VMM executable; bin/sparkler by default. */
  bin?: string;
  /** How long a VMM may take to answer its API before it is killed and replaced. */
  startTimeoutMs?: number;
  /** Start each VMM in a jail (the pool runs as root then). */
  jail?: PoolJail;
  /** Injected by tests. */
  spawn?: (command: string, args: readonly string[], options: SpawnOptions) => ChildProcess;
  probe?: (socketPath: string) => Promise<boolean>;
  log?: (line: string) => void;
}

interface Slot {
  id: string;
  child: ChildProcess;
  state: SlotState;
  startedAt: number;
}

export class PoolError extends SparklerError {
  constructor(message: string) {
    super('EPOOL', message);
    this.name = 'PoolError';
  }
}

export class WarmPool {
  private readonly slots = new Map<string, Slot>();
  private sequence = 0;
  private stopped = false;
  private timer?: NodeJS.Timeout;
  private watcher?: fs.FSWatcher;
  /** VMMs started, and those that died or timed out before they were claimed. */
  readonly counts = { started: 0, claimed: 0, failed: 0 };

  constructor(private readonly opts: PoolOptions) {
    if (!Number.isInteger(opts.size) || opts.size < 1) throw new PoolError(`The pool size must be a whole number of at least 1, not ${opts.size}.`);
    if (opts.jail?.jailerArgs?.some((a) => a === '--new-pid-ns' || a === '--daemonize')) {
      throw new PoolError('A pooled VMM must be the jailer\'s own process (its pid is how a client ends it): --new-pid-ns and --daemonize are not allowed.');
    }
  }

  /** Creates the folder, starts `size` VMMs and keeps the count; resolves once all answer. */
  async start(): Promise<void> {
    preparePoolDir(this.opts.dir);
    // A claim is a rename out of idle/: notice it at once (and poll, in case a watch event is lost).
    this.watcher = fs.watch(path.join(this.opts.dir, 'idle'), () => this.reconcile());
    this.timer = setInterval(() => this.reconcile(), 100);
    this.reconcile();
    await this.waitIdle(this.opts.size, (this.opts.startTimeoutMs ?? 10_000) * 2);
  }

  /** VMMs in each state, as the pool sees them now. */
  get census(): Record<SlotState, number> {
    const c = { starting: 0, idle: 0, claimed: 0 };
    for (const s of this.slots.values()) c[s.state]++;
    return c;
  }

  /** Resolves when at least `n` VMMs are idle. */
  async waitIdle(n: number, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (listSlots(this.opts.dir, 'idle').length < n) {
      if (Date.now() > deadline) throw new PoolError(`The pool did not reach ${n} idle VMMs within ${timeoutMs} ms (${JSON.stringify(this.census)}).`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Ends the idle and starting VMMs and stops refilling; claimed ones run on. */
  stop(): void {
    // A socket renamed out of idle/ since the last look was claimed: it must not be killed.
    this.noticeClaims();
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.watcher?.close();
    for (const slot of this.slots.values()) {
      if (slot.state === 'claimed') continue;
      slot.child.kill('SIGTERM');
      this.removeSlotFiles(slot);
    }
  }

  /** Marks claimed slots, starts replacements, promotes answering VMMs to idle. */
  private reconcile(): void {
    if (this.stopped) return;
    this.noticeClaims();
    const c = this.census;
    for (let missing = this.opts.size - c.idle - c.starting; missing > 0; missing--) this.startOne();
  }

  /** An idle slot whose socket left idle/ was claimed. */
  private noticeClaims(): void {
    for (const slot of this.slots.values()) {
      if (slot.state === 'idle' && !fs.existsSync(slotPath(this.opts.dir, 'idle', slot.id))) {
        slot.state = 'claimed';
        this.counts.claimed++;
        slot.child.unref();
        this.opts.log?.(`pool: ${slot.id} claimed`);
      }
    }
  }

  private startOne(): void {
    const id = `vmm-${process.pid}-${Date.now().toString(36)}-${(this.sequence++).toString(36)}`;
    const socket = slotPath(this.opts.dir, 'starting', id);
    const spawn = this.opts.spawn ?? spawnProcess;
    const [command, args] = this.command(id, socket);
    const child = spawn(command, args, { detached: true, stdio: ['ignore', 'ignore', 'inherit'] });
    const slot: Slot = { id, child, state: 'starting', startedAt: Date.now() };
    this.slots.set(id, slot);
    // Before the socket can reach idle/, so every claimable VMM has its pid beside it.
    if (child.pid !== undefined) fs.writeFileSync(pidPath(this.opts.dir, id), `${child.pid}\n`);
    this.counts.started++;
    child.on('exit', (code, signal) => {
      this.noticeClaims(); // a VMM claimed and ended between two looks was still claimed
      this.slots.delete(id);
      if (slot.state !== 'claimed' && !this.stopped) {
        this.counts.failed++;
        this.opts.log?.(`pool: ${id} ended before it was claimed (${signal ?? `exit ${code}`}); starting another`);
      }
      this.removeSlotFiles(slot);
      this.reconcile();
    });
    void this.promote(slot, socket);
  }

  /** How a slot's VMM is started: bin/sparkler itself, or the jailer execing it in its chroot (the slot a symlink to its socket). */
  private command(id: string, socket: string): [string, string[]] {
    const bin = this.opts.bin ?? SPARKLER_BIN;
    const vmmArgs = this.opts.vmmArgs ?? [];
    const jail = this.opts.jail;
    if (!jail) return [bin, ['--api-sock', socket, '--id', id, ...vmmArgs]];
    fs.symlinkSync(path.join(this.jailRoot(jail, id), 'api.sock'), socket);
    return [jail.jailer ?? SPARKLER_JAILER_BIN, [
      '--id', id, '--exec-file', bin, '--uid', `${jail.uid}`, '--gid', `${jail.gid}`, '--chroot-base-dir', jail.chrootBaseDir ?? DEFAULT_CHROOT_BASE,
      ...(jail.jailerArgs ?? []), '--', '--api-sock', 'api.sock', ...vmmArgs,
    ]];
  }

  /** A slot's chroot, where the jailer lays it out (the exec file's canonical name, as the jailer takes it). */
  private jailRoot(jail: PoolJail, id: string): string {
    return chrootDir(jail.chrootBaseDir ?? DEFAULT_CHROOT_BASE, fs.realpathSync(this.opts.bin ?? SPARKLER_BIN), id);
  }

  /** Polls the new VMM's API; once it answers, publishes it in idle/ (a rename, so never half-ready). */
  private async promote(slot: Slot, socket: string): Promise<void> {
    const probe = this.opts.probe ?? apiAnswers;
    const timeout = this.opts.startTimeoutMs ?? 10_000;
    while (!this.stopped && slot.state === 'starting' && this.slots.has(slot.id)) {
      if (await probe(socket)) {
        if (this.stopped || !this.slots.has(slot.id)) return;
        fs.renameSync(socket, slotPath(this.opts.dir, 'idle', slot.id));
        slot.state = 'idle';
        return;
      }
      if (Date.now() - slot.startedAt > timeout) {
        this.opts.log?.(`pool: ${slot.id} did not answer within ${timeout} ms; killing it`);
        slot.child.kill('SIGKILL');
        return;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  private removeSlotFiles(slot: Slot): void {
    for (const f of [...(['starting', 'idle', 'claimed'] as const).map((s) => slotPath(this.opts.dir, s, slot.id)), pidPath(this.opts.dir, slot.id)]) {
      try { fs.unlinkSync(f); } catch { /* not there */ }
    }
    // A jail whose VMM was never claimed is the pool's to remove; a claimed one is its client's.
    if (this.opts.jail && slot.state !== 'claimed') {
      fs.rmSync(path.dirname(this.jailRoot(this.opts.jail, slot.id)), { recursive: true, force: true });
    }
  }
}
