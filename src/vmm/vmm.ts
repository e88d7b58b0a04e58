/**
 * A running microVM: its KVM objects, guest memory, buses, devices and vCPUs. Built by
 * builder.ts; this class owns the lifecycle from start to the exit the process reports.
 */
import { Bus } from '../devices/bus';
import { Kvm } from '../kvm/kvm';
import { VcpuFd } from '../kvm/vcpu';
import { VmFd } from '../kvm/vm';
import { GuestMemory } from '../memory/guest-memory';
import type { QueuedWrites } from './queued-writes';
import { LegacyDevices } from './legacy-devices';
import { VcpuRunner, VmStopReason } from './vcpu-runner';
import { markStartup } from './startup-marks';

export type InstanceState = 'Not started' | 'Running' | 'Paused';

export interface VmmParts {
  kvm: Kvm;
  vm: VmFd;
  memory: GuestMemory;
  vcpus: VcpuFd[];
  pio: Bus;
  mmio: Bus;
  devices: LegacyDevices;
  /** Guest writes KVM queues instead of exiting (queued-writes.ts), when it can. */
  queuedWrites?: QueuedWrites;
}

/**
 * A queued write that no exit follows (a guest's last character) is applied this long after the
 * last exit at most; the look repeats while writes keep coming.
 */
const TRAILING_DRAIN_MS = 20;

export class Vmm {
  private runner: VcpuRunner;
  private readonly stopped: Promise<VmStopReason>;
  /** CLOCK_MONOTONIC ns at the first KVM_RUN, once the vCPUs run. */
  firstRunNs?: bigint;
  private trailingDrain: NodeJS.Timeout | undefined;

  constructor(readonly parts: VmmParts) {
    let resolveStopped!: (reason: VmStopReason) => void;
    this.stopped = new Promise((resolve) => { resolveStopped = resolve; });
    this.runner = new VcpuRunner(parts.vcpus, {
      pio: parts.pio,
      mmio: parts.mmio,
      onStop: (reason) => {
        if (this.trailingDrain) clearTimeout(this.trailingDrain);
        parts.queuedWrites?.ring.drain(this.applyQueuedWrite);
        parts.devices.serial.flush();
        resolveStopped(reason);
      },
      drainQueuedWrites: parts.queuedWrites && (() => this.drainQueuedWrites()),
      onFirstRun: (ns) => { this.firstRunNs = ns; },
    });
  }

  /** Applies one queued guest write to its bus (made once: the drain runs on every exit). */
  private readonly applyQueuedWrite = (pio: boolean, address: number, data: Buffer): void => {
    try {
      (pio ? this.parts.pio : this.parts.mmio).write(address, data);
    } catch (err) {
      // As for an exit: a device that throws on guest input loses that write, never the VMM.
      process.emitWarning(`queued write to 0x${address.toString(16)}: device error: ${(err as Error).message}`);
    }
  };

  /**
   * Applies the queued guest writes, in order; then, after an exit while KVM queues, or after a
   * timer's look that found writes, looks again TRAILING_DRAIN_MS later.
   */
  private drainQueuedWrites(fromTimer = false): void {
    const queued = this.parts.queuedWrites;
    if (!queued) return;
    const applied = queued.ring.drain(this.applyQueuedWrite);
    if ((fromTimer ? applied > 0 : queued.queuing()) && !this.trailingDrain) {
      this.trailingDrain = setTimeout(() => {
        this.trailingDrain = undefined;
        this.drainQueuedWrites(true);
      }, TRAILING_DRAIN_MS).unref();
    }
  }

  get state(): InstanceState {
    return this.runner.paused ? 'Paused' : 'Running';
  }

  start(): void {
    this.runner.start();
    markStartup('vcpus_started');
  }

  pause(): Promise<void> {
    return this.runner.pause();
  }

  resume(): void {
    this.runner.resume();
  }

  /** Ends the VM from the host side (API, signal). */
  stop(reason: VmStopReason = { kind: 'requested' }): void {
    this.runner.stop(reason);
  }

  /** Resolves when the guest or the VMM ends the VM. */
  waitForStop(): Promise<VmStopReason> {
    return this.stopped;
  }

  get exitCounters() {
    return this.runner.exits;
  }

  /** How exits reached the VMM thread (woken, or taken while spinning): for the Debug log. */
  get handoverCounters() {
    return this.runner.handovers;
  }
}
