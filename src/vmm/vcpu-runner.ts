/**
 * Runs the vCPUs: one native pthread each (native/sparkler.c) doing KVM_RUN, with every exit
 * handled here on the VMM thread while that vCPU waits. An explicit per-vCPU state machine
 * covers pause, resume and stop: a running vCPU is interrupted by setting kvm_run.immediate_exit
 * and kicking its thread with a signal, after which KVM_RUN returns EINTR.
 */
import { SparklerError } from '../errors';
import { KVM_EXIT, KVM_SYSTEM_EVENT, exitReasonName } from '../kvm/run';
import { VcpuFd } from '../kvm/vcpu';
import { native, NativeShim, VcpuHandle } from '../native';
import { Bus } from '../devices/bus';

const EINTR = 4;
const EAGAIN = 11;

/** Why the VM stopped. A guest-initiated stop is a clean exit; an error is not. */
export type VmStopReason =
  | { kind: 'reset' }
  | { kind: 'shutdown' }
  | { kind: 'triple-fault' }
  | { kind: 'halt' }
  | { kind: 'requested' }
  | { kind: 'error'; error: Error };

/** Where a vCPU is in its life. `parked` means waiting in the native thread for us to resume it. */
type VcpuRunState = 'created' | 'running' | 'parked' | 'stopped';

interface VcpuSlot {
  readonly fd: VcpuFd;
  handle?: VcpuHandle;
  state: VcpuRunState;
}

export interface VcpuRunnerOptions {
  pio: Bus;
  mmio: Bus;
  onStop: (reason: VmStopReason) => void;
  /** Called once, when the first vCPU thread is about to enter KVM_RUN (CLOCK_MONOTONIC ns). */
  onFirstRun?: (monotonicNs: bigint) => void;
  onUnhandledAccess?: (kind: 'pio' | 'mmio', address: number, isWrite: boolean) => void;
  shim?: NativeShim;
}

export interface VcpuExitCounters {
  io: number;
  mmio: number;
  other: number;
}

export class VcpuRunner {
  private readonly slots: VcpuSlot[];
  private readonly shim: NativeShim;
  private goal: 'run' | 'pause' | 'stop' = 'run';
  private pauseWaiters: (() => void)[] = [];
  private stopReason?: VmStopReason;
  private firstRunSeen = false;
  readonly exits: VcpuExitCounters = { io: 0, mmio: 0, other: 0 };

  constructor(vcpus: VcpuFd[], private readonly opts: VcpuRunnerOptions) {
    this.slots = vcpus.map((fd) => ({ fd, state: 'created' }));
    this.shim = opts.shim ?? native();
  }

  start(): void {
    const onExit = (index: number, result: number, firstRunNs: bigint) => this.onExit(index, result, firstRunNs);
    for (const [index, slot] of this.slots.entries()) {
      slot.state = 'running';
      slot.handle = this.shim.vcpuStart(slot.fd.fd, index, onExit);
    }
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

  private endThread(slot: VcpuSlot): void {
    slot.state = 'stopped';
    this.shim.vcpuResume(slot.handle!, true);
  }

  private onExit(index: number, result: number, firstRunNs: bigint): void {
    if (!this.firstRunSeen) {
      this.firstRunSeen = true;
      this.opts.onFirstRun?.(firstRunNs);
    }
    const slot = this.slots[index];
    if (result < 0 && result !== -EINTR && result !== -EAGAIN) {
      this.stop({ kind: 'error', error: new SparklerError('EVCPU', `KVM_RUN failed on vCPU ${index} (errno ${-result}).`) });
    } else if (result === 0) {
      try {
        this.handleExit(slot);
      } catch (err) {
        // A device that throws on guest input loses that access, never the VMM.
        process.emitWarning(`vCPU ${index}: device error: ${(err as Error).message}`);
      }
    }
    this.afterExit(slot);
  }

  /** Decides what the vCPU does next: run on, park for a pause, or end. */
  private afterExit(slot: VcpuSlot): void {
    if (this.goal === 'stop') {
      if (slot.state !== 'stopped') this.endThread(slot);
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
    const run = slot.fd.run;
    const reason = run.exitReason;
    switch (reason) {
      case KVM_EXIT.IO: {
        this.exits.io++;
        const size = run.ioSize;
        const port = run.ioPort;
        const data = run.ioData();
        const out = run.ioIsOut;
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
        this.stop({ kind: 'triple-fault' });
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
