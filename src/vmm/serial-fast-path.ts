/**
 * COM1's console output without a hand-over per exit: while the serial device says so
 * (Serial.onFastRules), the vCPU threads answer the guest's LSR polls with a constant and append
 * its THR writes to a byte ring themselves (native/fast-pio.c, vmm/fast-pio.ts); everything else
 * still exits to the serial device here. The ring is applied to the device, in order, before
 * every exit the VMM handles (so a write that does exit follows the bytes before it), before a
 * pause, a snapshot and the VM's end (Vmm.drainQueuedWrites), and a few ms after C signals the
 * eventfd that bytes arrived, so output never waits for an exit that may not come.
 * Where KVM has coalesced PIO (queued-writes.ts) the THR writes go there instead, with no exit
 * at all, and only the LSR polls are answered here; a poll that finds writes queued in KVM's
 * ring signals the same eventfd, so they are drained the same way (Linux's console ends every
 * write with such a poll, then an IER write that exits).
 */
import { COM1_PORT } from '../arch/x86_64/layout';
import type { CoalescedRing, CoalescedWrite } from '../kvm/coalesced-ring';
import { Serial, SerialFastRules } from '../devices/legacy/serial';
import { NativeShim, VcpuHandle } from '../native';
import { FastPioTable } from './fast-pio';

const LSR_PORT = COM1_PORT + 5;
const LSR_RULE = 0;
const THR_RULE = 1;
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
/** After C signals new bytes, the drain waits this long, so a burst of output is one drain. */
export const FAST_PATH_DRAIN_DELAY_MS = 2;

export class SerialFastPath {
  readonly table: FastPioTable;
  private readonly eventFd: number;
  private readonly watch: ReturnType<NativeShim['watchFd']>;
  private drainTimer: NodeJS.Timeout | undefined;
  private onPending: (() => void) | undefined;
  private readonly one = Buffer.alloc(1);
  private closed = false;
  private eventFdOpen = true;

  /**
   * Undefined unless SPARKLER_FAST_PIO=1 (opt-in: a Linux guest's console once stopped mid-line in
   * two emulated-host boots of the merged tree, cause not found yet), or where the addon has no fast path.
   * `coalesced`: KVM's coalesced ring, which takes the THR writes, and its byte offset in the
   * kvm_run mapping.
   */
  static create(shim: NativeShim, serial: Serial, env: NodeJS.ProcessEnv = process.env, coalesced?: { ring: CoalescedRing; offset: number }): SerialFastPath | undefined {
    if (env.SPARKLER_FAST_PIO !== '1' || env.SPARKLER_NO_FAST_PIO === '1' || !shim.fastPioCreate || !shim.vcpuSetFastPio) return undefined;
    return new SerialFastPath(shim, serial, coalesced);
  }

  private constructor(private readonly shim: NativeShim, serial: Serial, private readonly coalesced?: { ring: CoalescedRing; offset: number }) {
    const fd = shim.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) throw new Error(`eventfd for the serial fast path failed (errno ${-fd})`);
    this.eventFd = fd;
    this.table = new FastPioTable(shim.fastPioCreate!(fd));
    if (coalesced) this.table.watchCoalescedRing(coalesced.offset);
    this.watch = shim.watchFd(fd, () => this.signalled());
    serial.onFastRules((rules) => this.apply(rules));
  }

  /** KVM's coalesced ring's first and last (debug dumps). */
  coalescedEnds(): number[] | undefined {
    return this.coalesced?.ring.positions();
  }

  /** Whether the drain timer is armed, and whether the eventfd is watched (debug dumps). */
  debugTimers(): { drainTimer: boolean; closed: boolean } {
    return { drainTimer: this.drainTimer !== undefined, closed: this.closed };
  }

  /** The vCPU threads read this table from now on (call once per vCPU, after it started). */
  attach(handle: VcpuHandle, run: Uint8Array): void {
    const r = this.shim.vcpuSetFastPio!(handle, this.table.buffer, run);
    if (r < 0 && r !== -16) throw new Error(`attaching the serial fast path to a vCPU failed (errno ${-r})`);
  }

  /** Called (on the VMM thread) when bytes arrived with no exit to carry them: the owner drains. */
  setOnPending(cb: () => void): void {
    this.onPending = cb;
  }

  /** Applies the ring's bytes to the device as THR writes, in order (the Vmm's drain, as for queued writes). */
  drain(apply: CoalescedWrite): number {
    // The table's drain first: it clears the notify flag before anything is read.
    const own = this.table.drain((bytes) => {
      for (const b of bytes) {
        this.one[0] = b;
        apply(true, COM1_PORT, this.one);
      }
    });
    return own + (this.coalesced?.ring.drain(apply) ?? 0);
  }

  /**
   * When the vCPUs have stopped: rules off and the eventfd no longer watched, so that a stopped VM
   * never keeps the event loop alive (the eventfd stays open until close(): a vCPU thread may
   * still be on its way out). Idempotent.
   */
  stopWatching(): void {
    if (this.closed) return;
    this.closed = true;
    this.table.setRule(LSR_RULE, undefined);
    this.table.setRule(THR_RULE, undefined);
    if (this.drainTimer) clearTimeout(this.drainTimer);
    this.shim.unwatchFd(this.watch);
  }

  /** After the vCPU threads were joined: stops watching, then closes the eventfd. Idempotent. */
  close(): void {
    this.stopWatching();
    if (this.eventFdOpen) this.shim.close(this.eventFd);
    this.eventFdOpen = false;
  }

  private apply(rules: SerialFastRules): void {
    if (this.closed) return;
    this.table.setRule(LSR_RULE, rules.lsr === undefined ? undefined : { port: LSR_PORT, action: 'read-constant', value: rules.lsr });
    // With coalesced PIO KVM queues the THR writes itself (registered by queued-writes.ts).
    this.table.setRule(THR_RULE, rules.thr && !this.coalesced ? { port: COM1_PORT, action: 'write-ring' } : undefined);
  }

  private signalled(): void {
    this.shim.eventfdRead(this.eventFd);
    if (this.drainTimer || this.closed) return;
    this.drainTimer = setTimeout(() => {
      this.drainTimer = undefined;
      this.onPending?.();
    }, FAST_PATH_DRAIN_DELAY_MS);
    this.drainTimer.unref();
  }
}
