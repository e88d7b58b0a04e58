/**
 * Runs the vCPUs: one native pthread each (native/vcpu.c) doing KVM_RUN, with every exit
 * handled here on the VMM thread while that vCPU waits. An explicit per-vCPU state machine
 * covers pause, resume and stop: a running vCPU is interrupted by setting kvm_run.immediate_exit
 * and kicking its thread with a signal, after which KVM_RUN returns EINTR.
 *
 * Exits arrive through the threadsafe-function callback (onExit), or, while a vCPU keeps
 * exiting, synchronously: after handling an exit the runner resumes the vCPU and spins a
 * few tens of microseconds for its next exit (vcpuResumeAndWait), handling exit after exit in
 * one event-loop turn, bounded so that timers and I/O still run (see "Process and threads" in
 * docs/architecture.md).
 */
import { SparklerError } from '../errors';
import { KVM_EXIT, KVM_SYSTEM_EVENT, exitReasonName } from '../kvm/run';
import { VcpuFd } from '../kvm/vcpu';
import { native, NativeShim, VcpuHandle, VCPU_EXIT_NOT_AWAITED, VCPU_EXIT_PENDING } from '../native';
import { Bus } from '../devices/bus';

const EINTR = 4;
const EAGAIN = 11;

/**
 * The most either side of the hand-over spins for the other (ns); the native side adapts each
 * spin to the waits it has seen, so this is reached only on slow (nested) hosts.
 */
export const DEFAULT_VCPU_SPIN_NS = 200_000;
/** At most this many exits, or this much time, in one synchronous run of the fast path. */
export const FAST_PATH_MAX_EXITS = 1024;
export const FAST_PATH_MAX_NS = 1_000_000n;
/** After a spin that saw no exit, up to this many exits go the slow way before spinning again. */
export const SPIN_BACKOFF_MAX = 16;

/**
 * How long each side of the vCPU hand-over spins before sleeping (ns): SPARKLER_VCPU_SPIN_NS,
 * else DEFAULT_VCPU_SPIN_NS; 0 disables spinning. With only one CPU to run on, spinning only
 * delays the thread being waited for, so it is off whatever the variable says.
 */
export function vcpuSpinNsFrom(env: NodeJS.ProcessEnv, cpus: number): number {
  if (cpus < 2) return 0;
  const raw = env.SPARKLER_VCPU_SPIN_NS;
  if (raw === undefined || raw.trim() === '') return DEFAULT_VCPU_SPIN_NS;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) return DEFAULT_VCPU_SPIN_NS;
  return Math.min(Math.floor(n), 10_000_000);
}

let spinNsOnce: number | undefined;
/** vcpuSpinNsFrom for this process, read once (the CPU count from the addon: node:os is not loaded for it). */
export function vcpuSpinNs(): number {
  spinNsOnce ??= vcpuSpinNsFrom(process.env, native().availableCpus());
  return spinNsOnce;
}

/** Why the VM stopped. A guest-initiated stop is a clean exit; an error is not. */
export type VmStopReason =
  | { kind: 'reset' }
  | { kind: 'shutdown' }
  /** `state`: the vCPU's registers when it shut down, for the log (what the guest was doing). */
  | { kind: 'triple-fault'; vcpu?: number; state?: string }
  | { kind: 'halt' }
  | { kind: 'requested' }
  | { kind: 'error'; error: Error };

/** Where a vCPU is in its life. `parked` means waiting in the native thread for us to resume it. */
type VcpuRunState = 'created' | 'running' | 'parked' | 'stopped';

interface VcpuSlot {
  readonly fd: VcpuFd;
  handle?: VcpuHandle;
  state: VcpuRunState;
  /** Exits still to take the slow way after a missed spin, and the current back-off length. */
  spinSkip: number;
  spinBackoff: number;
  /**
   * The last exit was handled but KVM has not finished the instruction (an IN's result is read,
   * an MMIO read's value loaded, on the next KVM_RUN): a pause re-enters once with immediate_exit
   * before parking, so the saved state never holds a half-done access.
   */
  accessPending?: boolean;
}

export interface VcpuRunnerOptions {
  pio: Bus;
  mmio: Bus;
  onStop: (reason: VmStopReason) => void;
  /** Called once, when the first vCPU thread is about to enter KVM_RUN (CLOCK_MONOTONIC ns). */
  onFirstRun?: (monotonicNs: bigint) => void;
  onUnhandledAccess?: (kind: 'pio' | 'mmio', address: number, isWrite: boolean) => void;
  /** A device threw on a guest access (the access is lost, never the VMM): for the rate-limited log. */
  onDeviceError?: (message: string) => void;
  /** Applies the guest writes KVM queued instead of exiting (coalesced PIO); run before each exit is handled. */
  drainQueuedWrites?: () => void;
  shim?: NativeShim;
  /** The serial fast path (serial-fast-path.ts): attached to every vCPU thread as it starts. */
  fastPath?: { attach(handle: VcpuHandle, run: Uint8Array): void };
  /** Spin budget per hand-over (ns), 0 = never spin; default vcpuSpinNs() (SPARKLER_VCPU_SPIN_NS). */
  spinNs?: number;
}

export interface VcpuExitCounters {
  io: number;
  mmio: number;
  other: number;
}

export interface VcpuExitDirections {
  ioIn: number;
  ioOut: number;
  mmioRead: number;
  mmioWrite: number;
}

/** How exits reached the VMM thread: through onExit (a wake-up) or taken while spinning. */
export interface VcpuHandoverCounters {
  posted: number;
  spun: number;
  /** Spins that ended without an exit (their time was wasted). */
  missed: number;
  /** Resumes where the native side chose not to spin (the vCPU thread last seen on this CPU). */
  declined: number;
  /** Fast-path runs that reached their bound and yielded the event-loop turn. */
  yielded: number;
}

export class VcpuRunner {
  private readonly slots: VcpuSlot[];
  private readonly shim: NativeShim;
  private goal: 'run' | 'pause' | 'stop' = 'run';
  private pauseWaiters: (() => void)[] = [];
  private endWaiters: (() => void)[] = [];
  private stopReason?: VmStopReason;
  private firstRunSeen = false;
  /** The VMM thread's spin for the next exit: 0 = off. */
  private readonly mainSpinNs: number;
  private readonly vcpuSpinNs: number;
  readonly exits: VcpuExitCounters = { io: 0, mmio: 0, other: 0 };
  /** The same I/O and MMIO exits by direction (Firecracker's vcpu metrics). */
  readonly exitDirections: VcpuExitDirections = { ioIn: 0, ioOut: 0, mmioRead: 0, mmioWrite: 0 };
  readonly handovers: VcpuHandoverCounters = { posted: 0, spun: 0, missed: 0, declined: 0, yielded: 0 };

  constructor(vcpus: VcpuFd[], private readonly opts: VcpuRunnerOptions) {
    this.slots = vcpus.map((fd) => ({ fd, state: 'created', spinSkip: 0, spinBackoff: 0 }));
    this.shim = opts.shim ?? native();
    this.vcpuSpinNs = opts.spinNs ?? vcpuSpinNs();
    // With several vCPUs the native side ends a spin for one as soon as another's exit is posted.
    this.mainSpinNs = this.vcpuSpinNs;
  }

  /**
   * Starts the vCPU threads; with `paused` (a snapshot loaded without resume_vm) each one's first
   * KVM_RUN returns at once (immediate_exit) and it parks before running a guest instruction.
   */
  start(paused = false): void {
    if (paused) {
      this.goal = 'pause';
      for (const slot of this.slots) slot.fd.run.immediateExit = true;
    }
    const onExit = (index: number, result: number, firstRunNs: bigint) => this.onExit(index, result, firstRunNs);
    for (const [index, slot] of this.slots.entries()) {
      slot.state = 'running';
      slot.handle = this.shim.vcpuStart(slot.fd.fd, index, onExit, this.vcpuSpinNs);
      this.opts.fastPath?.attach(slot.handle, slot.fd.run.bytes);
    }
  }

  /** Each vCPU's run state and pending access (debug dumps). */
  debugSlots(): unknown {
    return { goal: this.goal, slots: this.slots.map((s) => ({ state: s.state, accessPending: s.accessPending, spinSkip: s.spinSkip, immediateExit: s.fd.run.immediateExit })) };
  }

  get paused(): boolean {
    return this.slots.every((s) => s.state === 'parked' || s.state === 'stopped');
  }

  /** Interrupts every vCPU and resolves once all of them are parked. */
  pause(): Promise<void> {
    if (this.goal === 'stop') return Promise.resolve();
    this.goal = 'pause';
    if (this.paused) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.pauseWaiters.push(resolve));
    this.kickRunning();
    return done;
  }

  resume(): void {
    if (this.goal !== 'pause') return;
    this.goal = 'run';
    // A pause still waiting for vCPUs to park is over: it resolves, and the VM runs on.
    this.pauseWaiters.splice(0).forEach((resolve) => resolve());
    for (const slot of this.slots) {
      if (slot.state !== 'parked') continue;
      slot.fd.run.immediateExit = false;
      slot.state = 'running';
      this.shim.vcpuResume(slot.handle!, false);
    }
  }

  /** Stops every vCPU; onStop is called once with the first reason given. */
  stop(reason: VmStopReason): void {
    if (this.goal === 'stop') return;
    this.goal = 'stop';
    this.stopReason = reason;
    for (const slot of this.slots) {
      if (slot.state === 'parked') this.endThread(slot);
    }
    this.kickRunning();
    this.pauseWaiters.splice(0).forEach((resolve) => resolve());
    this.opts.onStop(reason);
  }

  private kickRunning(): void {
    for (const slot of this.slots) {
      if (slot.state !== 'running') continue;
      slot.fd.run.immediateExit = true;
      this.shim.vcpuKick(slot.handle!);
    }
  }

  /** True once stop() was called (by the guest's exit, an error or the host). */
  get stopping(): boolean {
    return this.goal === 'stop';
  }

  private endThread(slot: VcpuSlot): void {
    slot.state = 'stopped';
    this.shim.vcpuResume(slot.handle!, true);
    if (this.threadsEnded()) this.endWaiters.splice(0).forEach((resolve) => resolve());
  }

  private threadsEnded(): boolean {
    return this.slots.every((s) => s.state === 'stopped' || s.state === 'created');
  }

  /**
   * After stop(): resolves once every vCPU thread was told to end, having joined each (the
   * threads are gone when it resolves; their handles are dropped only then).
   */
  async joinThreads(): Promise<void> {
    if (this.goal !== 'stop') throw new SparklerError('EVCPU', 'The vCPU threads can only be joined after the VM is stopped.');
    if (!this.threadsEnded()) await new Promise<void>((resolve) => this.endWaiters.push(resolve));
    for (const [index, slot] of this.slots.entries()) {
      if (slot.handle === undefined) continue;
      const result = this.shim.vcpuJoin(slot.handle);
      slot.handle = undefined;
      if (result < 0) throw new SparklerError('EVCPU', `Joining vCPU ${index}'s thread failed (errno ${-result}).`);
    }
  }

  private onExit(index: number, result: number, firstRunNs: bigint): void {
    if (!this.firstRunSeen) {
      this.firstRunSeen = true;
      this.opts.onFirstRun?.(firstRunNs);
    }
    this.handovers.posted++;
    const slot = this.slots[index];
    this.dispatch(slot, index, result);
    if (this.mainSpinNs > 0) this.runFast(slot, index);
    else this.afterExit(slot);
  }

  /** Handles one KVM_RUN return (0 or -errno) whose exit this thread holds. */
  private dispatch(slot: VcpuSlot, index: number, result: number): void {
    slot.accessPending = result === 0;
    if (result < 0 && result !== -EINTR && result !== -EAGAIN) {
      this.stop({ kind: 'error', error: new SparklerError('EVCPU', `KVM_RUN failed on vCPU ${index} (errno ${-result}).`) });
    } else if (result === 0) {
      try {
        this.handleExit(slot);
      } catch (err) {
        // A device that throws on guest input loses that access, never the VMM.
        this.opts.onDeviceError?.(`vCPU ${index}: a device failed on the guest's access, which is lost: ${(err as Error).message}`);
      }
    }
  }

  /**
   * The fast path, entered holding a handled exit: resume the vCPU and spin for its next exit;
   * while exits keep coming, handle them here. After FAST_PATH_MAX_EXITS or FAST_PATH_MAX_NS,
   * yield the event-loop turn (timers, fds, the API, other work run) and go on from
   * setImmediate: the vCPU runs meanwhile, and its next exit is kept for us rather than posted.
   * A spin that sees no exit ends the fast path: the exit will come through onExit. Anything but
   * 'run' (a device stopped the VM, a pause) leaves through afterExit as usual.
   */
  private runFast(slot: VcpuSlot, index: number): void {
    const deadline = process.hrtime.bigint() + FAST_PATH_MAX_NS;
    for (let n = 1; ; n++) {
      if (this.goal !== 'run' || slot.spinSkip > 0) {
        if (slot.spinSkip > 0) slot.spinSkip--;
        this.afterExit(slot);
        return;
      }
      slot.fd.run.immediateExit = false;
      if (n > FAST_PATH_MAX_EXITS || ((n & 7) === 0 && process.hrtime.bigint() > deadline)) {
        this.handovers.yielded++;
        this.shim.vcpuResumeWatched(slot.handle!);
        setImmediate(() => this.tookExit(slot, index, this.shim.vcpuAwaitExit(slot.handle!, this.mainSpinNs)) && this.runFast(slot, index));
        return;
      }
      if (!this.tookExit(slot, index, this.shim.vcpuResumeAndWait(slot.handle!, this.mainSpinNs))) return;
    }
  }

  /** Accounts for a spin's outcome; true (after handling it) when it brought an exit. */
  private tookExit(slot: VcpuSlot, index: number, result: number): boolean {
    if (result === VCPU_EXIT_NOT_AWAITED) {
      this.handovers.declined++;
      return false;
    }
    if (result === VCPU_EXIT_PENDING) {
      this.handovers.missed++;
      slot.spinBackoff = Math.min(SPIN_BACKOFF_MAX, slot.spinBackoff * 2 || 1);
      slot.spinSkip = slot.spinBackoff;
      return false;
    }
    this.handovers.spun++;
    slot.spinBackoff = 0;
    this.dispatch(slot, index, result);
    return true;
  }

  /** Decides what the vCPU does next: run on, park for a pause, or end. */
  private afterExit(slot: VcpuSlot): void {
    if (this.goal === 'stop') {
      if (slot.state !== 'stopped') this.endThread(slot);
      return;
    }
    if (this.goal === 'pause' && slot.accessPending) {
      slot.accessPending = false;
      slot.fd.run.immediateExit = true;
      this.shim.vcpuResume(slot.handle!, false);
      return;
    }
    if (this.goal === 'pause') {
      slot.state = 'parked';
      if (this.paused) this.pauseWaiters.splice(0).forEach((resolve) => resolve());
      return;
    }
    slot.fd.run.immediateExit = false;
    this.shim.vcpuResume(slot.handle!, false);
  }

  private handleExit(slot: VcpuSlot): void {
    // Writes queued before this exit happened before it: apply them first.
    this.opts.drainQueuedWrites?.();
    const run = slot.fd.run;
    const reason = run.exitReason;
    switch (reason) {
      case KVM_EXIT.IO: {
        this.exits.io++;
        const size = run.ioSize;
        const port = run.ioPort;
        const data = run.ioData();
        const out = run.ioIsOut;
        if (out) this.exitDirections.ioOut++;
        else this.exitDirections.ioIn++;
        for (let at = 0; at < data.length; at += size) {
          const chunk = data.subarray(at, at + size);
          const handled = out ? this.opts.pio.write(port, chunk) : this.opts.pio.read(port, chunk);
          if (!handled) {
            if (!out) chunk.fill(0xff); // an empty ISA port floats high
            this.opts.onUnhandledAccess?.('pio', port, out);
          }
        }
        return;
      }
      case KVM_EXIT.MMIO: {
        this.exits.mmio++;
        const address = run.mmioAddress;
        const data = run.mmioData();
        const write = run.mmioIsWrite;
        if (write) this.exitDirections.mmioWrite++;
        else this.exitDirections.mmioRead++;
        const handled = write ? this.opts.mmio.write(address, data) : this.opts.mmio.read(address, data);
        if (!handled) {
          if (!write) data.fill(0);
          this.opts.onUnhandledAccess?.('mmio', address, write);
        }
        return;
      }
      case KVM_EXIT.HLT:
        this.exits.other++;
        this.stop({ kind: 'halt' });
        return;
      case KVM_EXIT.SHUTDOWN:
        this.exits.other++;
        this.stop({ kind: 'triple-fault', vcpu: slot.fd.id, state: describeVcpuState(slot.fd) });
        return;
      case KVM_EXIT.SYSTEM_EVENT: {
        this.exits.other++;
        const type = run.systemEventType;
        if (type === KVM_SYSTEM_EVENT.RESET) this.stop({ kind: 'reset' });
        else if (type === KVM_SYSTEM_EVENT.SHUTDOWN) this.stop({ kind: 'shutdown' });
        else this.stop({ kind: 'error', error: new SparklerError('EGUESTCRASH', `The guest reported a crash (system event ${type}).`) });
        return;
      }
      case KVM_EXIT.FAIL_ENTRY:
        this.stop({ kind: 'error', error: new SparklerError('EVCPU', `KVM could not enter vCPU ${slot.fd.id} (hardware entry failure reason 0x${run.failEntryReason.toString(16)}).`) });
        return;
      case KVM_EXIT.INTERNAL_ERROR:
        this.stop({ kind: 'error', error: new SparklerError('EVCPU', `KVM reported an internal error on vCPU ${slot.fd.id} (suberror ${run.internalSuberror}); the guest likely ran an instruction KVM cannot emulate.`) });
        return;
      default:
        this.stop({ kind: 'error', error: new SparklerError('EVCPU', `vCPU ${slot.fd.id} stopped on an unexpected exit: ${exitReasonName(reason)}.`) });
    }
  }

  get stoppedBecause(): VmStopReason | undefined {
    return this.stopReason;
  }
}

/**
 * RIP, RSP, the control registers and EFER of a stopped vCPU, or why they could not be read.
 * KVM on AMD (SVM) resets a vCPU when it reports a shutdown (the VMCB is undefined after one), so
 * there a triple fault's registers are the reset state (rip 0xfff0, cs 0xf000): said so, since
 * they are not where the guest faulted.
 */
export function describeVcpuState(fd: Pick<VcpuFd, 'getRegs' | 'getSregs'>): string {
  const hex = (v: bigint) => `0x${v.toString(16)}`;
  try {
    const r = fd.getRegs();
    const s = fd.getSregs();
    const reset = r.rip === 0xfff0n && s.cs.selector === 0xf000 && s.cr0 === 0x10n;
    return `rip=${hex(r.rip)} rsp=${hex(r.rsp)} rflags=${hex(r.rflags)} cr0=${hex(s.cr0)} cr2=${hex(s.cr2)} cr3=${hex(s.cr3)} cr4=${hex(s.cr4)} efer=${hex(s.efer)} cs=${hex(BigInt(s.cs.selector))}`
      + (reset ? ' (the reset state: KVM on AMD resets a vCPU at a shutdown, so where it faulted is lost)' : '');
  } catch (err) {
    return `registers unreadable: ${(err as Error).message}`;
  }
}
