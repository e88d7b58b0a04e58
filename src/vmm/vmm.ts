/**
 * A running microVM: its KVM objects, guest memory, buses, devices and vCPUs. Built by
 * builder.ts; this class owns the lifecycle from start to close: Running, Paused, Stopped (the
 * guest or the host ended it), then close() joins the vCPU threads and releases every fd and
 * guest RAM, in reverse build order.
 */
import { Bus } from '../devices/bus';
import { GuestTriggeredLog, LogSink } from '../devices/virtio/guest-log';
import { Kvm } from '../kvm/kvm';
import { VcpuFd } from '../kvm/vcpu';
import { VmFd } from '../kvm/vm';
import { GuestMemory } from '../memory/guest-memory';
import type { NativeShim } from '../native';
import type { DeviceManager } from './device-manager';
import type { QueuedWrites } from './queued-writes';
import { LegacyDevices } from './legacy-devices';
import { Teardown } from './teardown';
import { VcpuRunner, VmStopReason } from './vcpu-runner';
import { markStartup } from './startup-marks';
import { watchConsoleStall } from './console-stall-debug';

/** Firecracker's three states, and Stopped: the vCPUs ended (the process reports it and exits). */
export type InstanceState = 'Not started' | 'Running' | 'Paused' | 'Stopped';

export interface VmmParts {
  kvm: Kvm;
  vm: VmFd;
  memory: GuestMemory;
  vcpus: VcpuFd[];
  pio: Bus;
  mmio: Bus;
  devices: LegacyDevices;
  /** The virtio devices (the device manager's list). */
  virtio: DeviceManager;
  /** Guest writes KVM queues instead of exiting (queued-writes.ts), when it can. */
  queuedWrites?: QueuedWrites;
  /** Releases what the build made; close() runs it. */
  teardown: Teardown;
  /** Messages about what the guest did (unclaimed accesses, device errors): rate-limited. */
  guestLog?: LogSink;
  /** Injected by tests. */
  shim?: NativeShim;
}

/**
 * A queued write that no exit follows (a guest's last character) is applied this long after the
 * last exit at most; the look repeats while writes keep coming.
 */
const TRAILING_DRAIN_MS = 20;

export class Vmm {
  private runner: VcpuRunner;
  private readonly stopped: Promise<VmStopReason>;
  private readonly guestLog: LogSink;
  /** CLOCK_MONOTONIC ns at the first KVM_RUN, once the vCPUs run. */
  firstRunNs?: bigint;
  private trailingDrain: NodeJS.Timeout | undefined;
  private closing?: Promise<void>;
  private tornDown = false;

  constructor(readonly parts: VmmParts) {
    let resolveStopped!: (reason: VmStopReason) => void;
    this.stopped = new Promise((resolve) => { resolveStopped = resolve; });
    this.guestLog = parts.guestLog ?? new GuestTriggeredLog();
    this.runner = new VcpuRunner(parts.vcpus, {
      pio: parts.pio,
      mmio: parts.mmio,
      shim: parts.shim,
      onStop: (reason) => {
        if (this.trailingDrain) clearTimeout(this.trailingDrain);
        this.trailingDrain = undefined;
        parts.queuedWrites?.ring.drain(this.applyQueuedWrite);
        parts.queuedWrites?.fastPath?.stopWatching();
        parts.devices.serial.flush();
        resolveStopped(reason);
      },
      drainQueuedWrites: parts.queuedWrites && (() => this.drainQueuedWrites()),
      fastPath: parts.queuedWrites?.fastPath,
      onFirstRun: (ns) => { this.firstRunNs = ns; },
      onUnhandledAccess: (kind, address, isWrite) => {
        // On the exit path (Linux writes port 0x80 often): no formatting unless Debug is on.
        if (this.guestLog.enabled?.('Debug') === false) return;
        this.guestLog.debug?.(`The guest ${isWrite ? 'wrote' : 'read'} ${kind === 'pio' ? 'port' : 'MMIO address'} 0x${address.toString(16)}, where no device is.`);
      },
      onDeviceError: (message) => this.guestLog.warn(message),
    });
    // Bytes the vCPU threads queued with no exit after them (serial-fast-path.ts): applied here.
    parts.queuedWrites?.fastPath?.setOnPending(() => this.drainQueuedWrites(true));
  }

  /** The virtio devices, in slot order. */
  get devices(): DeviceManager {
    return this.parts.virtio;
  }

  /** Applies one queued guest write to its bus (made once: the drain runs on every exit). */
  private readonly applyQueuedWrite = (pio: boolean, address: number, data: Buffer): void => {
    try {
      (pio ? this.parts.pio : this.parts.mmio).write(address, data);
    } catch (err) {
      // As for an exit: a device that throws on guest input loses that write, never the VMM.
      this.guestLog.warn(`A queued guest write to 0x${address.toString(16)} failed in its device: ${(err as Error).message}`);
    }
  };

  /**
   * Applies the queued guest writes, in order; then, after an exit while KVM queues, or after a
   * timer's look that found writes, looks again TRAILING_DRAIN_MS later.
   */
  drainQueuedWrites(fromTimer = false): void {
    const queued = this.parts.queuedWrites;
    if (!queued || this.tornDown) return; // the rings are unmapped once close() tore the VM down
    const applied = queued.ring.drain(this.applyQueuedWrite);
    if ((fromTimer ? applied > 0 : queued.queuing()) && !this.trailingDrain) {
      this.trailingDrain = setTimeout(() => {
        this.trailingDrain = undefined;
        this.drainQueuedWrites(true);
      }, TRAILING_DRAIN_MS).unref();
    }
  }

  get state(): InstanceState {
    if (this.runner.stopping) return 'Stopped';
    return this.runner.paused ? 'Paused' : 'Running';
  }

  /** Starts the vCPUs; `paused` parks them before their first guest instruction (a snapshot loaded without resume_vm). */
  start(paused = false): void {
    if (paused) this.devices.setPaused(true); // a restored TAP is not read until the resume
    this.runner.start(paused);
    markStartup('vcpus_started');
    watchConsoleStall(this);
  }

  /**
   * Parks every vCPU, stops the devices' host-side input (no TAP reads while paused), then tells a
   * kvmclock guest it was paused (KVM_KVMCLOCK_CTRL), so that its soft-lockup watchdog does not
   * count the pause; a guest without kvmclock refuses (EINVAL): harmless.
   */
  async pause(): Promise<void> {
    await this.runner.pause();
    if (this.state !== 'Paused') return;
    this.drainQueuedWrites(); // the output the vCPUs queued reaches the sink before the pause is reported
    this.devices.setPaused(true);
    for (const vcpu of this.parts.vcpus) {
      try {
        vcpu.kvmclockCtrl();
      } catch {
        // Not a kvmclock guest, or a host without the capability.
      }
    }
  }

  resume(): void {
    this.devices.setPaused(false);
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

  /**
   * Stops the VM if it runs, waits for every vCPU thread to end and joins it, then releases the
   * devices, vCPU fds and kvm_run mappings, the VM fd, guest RAM and /dev/kvm, in reverse build
   * order. Idempotent: a second call returns the first one's promise.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stop({ kind: 'requested' });
      await this.runner.joinThreads();
      this.parts.queuedWrites?.ring.drain(this.applyQueuedWrite);
      this.parts.queuedWrites?.fastPath?.close();
      this.tornDown = true;
      if (this.trailingDrain) clearTimeout(this.trailingDrain);
      this.trailingDrain = undefined;
      this.parts.teardown.run();
    })();
    return this.closing;
  }

  /** The runner's per-vCPU states (debug dumps). */
  debugRunner(): unknown {
    return this.runner.debugSlots();
  }

  /** Each vCPU's RIP, read through a pause and a resume (debug dumps). */
  async debugRips(): Promise<string> {
    if (this.state !== 'Running') return 'not running';
    await this.pause();
    const rips = this.parts.vcpus.map((v) => { try { return `0x${v.getRegs().rip.toString(16)}`; } catch (e) { return String(e); } }).join(',');
    this.resume();
    return rips;
  }

  get exitCounters() {
    return this.runner.exits;
  }

  get exitDirections() {
    return this.runner.exitDirections;
  }

  /** How exits reached the VMM thread (woken, or taken while spinning): for the Debug log. */
  get handoverCounters() {
    return this.runner.handovers;
  }
}
