/**
 * virtio-net (spec 5.1) on a TAP: one RX and one TX queue. Frames carry the 12-byte virtio-net
 * header both ways, so checksum and segmentation offloads pass between the guest and the host
 * kernel untouched (the TAP is told which ones the guest accepted). Mergeable RX buffers let a
 * 64 KiB GSO frame span several small guest buffers.
 *
 * RX: the TAP fd is watched for readable; each frame is read into a host buffer, admitted by the
 * RX rate limiter, then copied into the guest's buffers. A frame that has no guest buffer yet,
 * or is held by the limiter, stays in the host buffer and the TAP watch is paused (no busy
 * polling) until the guest adds buffers or the limiter's timer fires. TX: chains admitted by the
 * TX limiter go to tx.ts (checked, offered to MMDS, written to the TAP from guest memory).
 * Hostile chains are dropped and counted; nothing a guest writes can throw out of here.
 */
import type { RateLimiterConfig } from '../../../config/rate-limiter';
import type { GuestMemory } from '../../../memory/guest-memory';
import type { MmdsNetworkStack } from '../../../mmds/net/network-stack';
import type { Clock, TimerHandle, Timers } from '../../../ratelimit/clock';
import { monotonicClock, nodeTimers } from '../../../ratelimit/clock';
import { RateLimiter, RateLimiterState } from '../../../ratelimit/rate-limiter';
import { DeviceType } from '../constants';
import type { DescriptorChain } from '../descriptor-chain';
import { readConfigBytes, VirtioDevice, VirtioInterrupt } from '../device';
import { FD_READABLE, FdWatch, FdWatcher } from '../device-context';
import { featureBit, hasFeature } from '../features';
import { GuestTriggeredLog, LogSink } from '../guest-log';
import { admitRequest, LimitedDrain } from '../limited-drain';
import type { Queue } from '../queue';
import {
  CONFIG_MAC, CONFIG_MAX_VQ_PAIRS, CONFIG_MTU, CONFIG_STATUS, STATUS_LINK_UP, CONFIG_SIZE, ETH_HEADER, MAX_BUFFER_SIZE, NET_QUEUE_SIZE, NetFeature,
  RX_QUEUE, TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_UFO, TX_QUEUE, VNET_HDR_SIZE,
} from './constants';
import { NetMetrics } from './metrics';
import type { NetBackend } from './tap';
import { RxChains } from './rx-chains';
import { NetTx } from './tx';

const EAGAIN = 11;
/** Frames moved per TAP event before the loop gets a turn (the watch is level-triggered). */
const RX_BATCH = 64;
/** After a TAP read error other than EAGAIN, look again this much later rather than spin. */
const READ_ERROR_BACKOFF_MS = 100;
/** The largest frame MMDS writes: an Ethernet MTU's worth (its segments are cut to fit). */
const MMDS_FRAME_MAX = 1514;

export interface VirtioNetOptions {
  ifaceId: string;
  backend: NetBackend;
  /** Six bytes; absent: no VIRTIO_NET_F_MAC, the guest picks its own. */
  guestMac?: Uint8Array;
  /** Advertised with VIRTIO_NET_F_MTU. */
  mtu?: number;
  rxRateLimiter?: RateLimiterConfig;
  txRateLimiter?: RateLimiterConfig;
  /** The metadata service's stack when this interface carries MMDS. */
  mmds?: MmdsNetworkStack;
  fds: FdWatcher;
  clock?: Clock;
  timers?: Timers;
  log?: LogSink;
  host?: LogSink;
}

export interface NetUpdate {
  rxRateLimiter?: RateLimiterConfig;
  txRateLimiter?: RateLimiterConfig;
}

/**
 * What a snapshot keeps of an interface beyond its queues. MMDS TCP connections are not kept:
 * the restored interface gets a fresh MMDS stack, and the guest's connections to the metadata
 * address are reset (its HTTP client retries). Offloads are not kept either: the restore
 * activates the device again with the negotiated features, which sets them on the new TAP.
 */
export interface NetState {
  /** The MAC in the config space (configured, or written by the guest since); absent: none. */
  mac?: Buffer;
  /** A frame read from the TAP (or made by MMDS) that was waiting for guest buffers; header included. */
  rxFrame?: Buffer;
  /** The RX limiter already took that frame's tokens. */
  rxAdmitted?: boolean;
  rxLimiter: RateLimiterState;
  txLimiter: RateLimiterState;
}

interface Active {
  memory: GuestMemory;
  rx: Queue;
  tx: Queue;
  interrupt: VirtioInterrupt;
  mergeable: boolean;
  watch: FdWatch;
}

/** The guest features that map to TAP offloads (what the host may hand the guest). */
export function tapOffloads(features: bigint): number {
  let flags = 0;
  if (hasFeature(features, NetFeature.GUEST_CSUM)) {
    flags |= TUN_F_CSUM;
    if (hasFeature(features, NetFeature.GUEST_TSO4)) flags |= TUN_F_TSO4;
    if (hasFeature(features, NetFeature.GUEST_TSO6)) flags |= TUN_F_TSO6;
    if (hasFeature(features, NetFeature.GUEST_UFO)) flags |= TUN_F_UFO;
  }
  return flags;
}

export class VirtioNet implements VirtioDevice {
  readonly deviceType = DeviceType.Net;
  readonly queueMaxSizes = [NET_QUEUE_SIZE, NET_QUEUE_SIZE];
  readonly features: bigint;
  readonly ifaceId: string;
  readonly metrics = new NetMetrics();
  readonly rxLimiter: RateLimiter;
  readonly txLimiter: RateLimiter;
  private readonly backend: NetBackend;
  private readonly mmds: MmdsNetworkStack | undefined;
  private readonly fds: FdWatcher;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly log: LogSink;
  private readonly host: LogSink;
  private readonly config = Buffer.alloc(CONFIG_SIZE);
  /** The MAC frames from the guest should carry; undefined when none was configured. */
  private mac: Buffer | undefined;
  private active: Active | undefined;
  private paused = false;
  private tapReadable = false;

  // RX: one frame at a time in `rxFrame` (header included); buffers popped but not yet used.
  private readonly rxFrame = Buffer.alloc(MAX_BUFFER_SIZE);
  private rxLength = 0;
  private rxAdmitted = false;
  private readonly rxChains: RxChains;
  private rxTimer: TimerHandle | undefined;
  private mmdsTimer: TimerHandle | undefined;

  private readonly tx: NetTx;
  private readonly txRequests: LimitedDrain<DescriptorChain>;

  constructor(opts: VirtioNetOptions) {
    this.ifaceId = opts.ifaceId;
    this.backend = opts.backend;
    this.mmds = opts.mmds;
    this.fds = opts.fds;
    this.clock = opts.clock ?? monotonicClock;
    this.timers = opts.timers ?? nodeTimers;
    this.log = opts.log ?? new GuestTriggeredLog();
    this.host = opts.host ?? this.log;
    let features = featureBit(NetFeature.CSUM) | featureBit(NetFeature.GUEST_CSUM)
      | featureBit(NetFeature.GUEST_TSO4) | featureBit(NetFeature.GUEST_TSO6) | featureBit(NetFeature.GUEST_UFO)
      | featureBit(NetFeature.HOST_TSO4) | featureBit(NetFeature.HOST_TSO6) | featureBit(NetFeature.HOST_UFO)
      | featureBit(NetFeature.MRG_RXBUF) | featureBit(NetFeature.STATUS);
    if (opts.guestMac !== undefined) {
      if (opts.guestMac.length !== 6) throw new RangeError(`A MAC address has 6 bytes, not ${opts.guestMac.length}.`);
      this.mac = Buffer.from(opts.guestMac);
      this.mac.copy(this.config, CONFIG_MAC);
      features |= featureBit(NetFeature.MAC);
    }
    if (opts.mtu !== undefined) {
      this.config.writeUInt16LE(opts.mtu, CONFIG_MTU);
      features |= featureBit(NetFeature.MTU);
    }
    this.config.writeUInt16LE(STATUS_LINK_UP, CONFIG_STATUS);
    this.config.writeUInt16LE(1, CONFIG_MAX_VQ_PAIRS);
    this.features = features;
    const clockOpts = { clock: opts.clock, timers: opts.timers };
    this.rxLimiter = new RateLimiter(opts.rxRateLimiter, { ...clockOpts, onUnblocked: () => this.guarded('RX after the rate limiter', () => { this.metrics.rxEventRateLimiter++; this.processRx(); }) });
    this.txLimiter = new RateLimiter(opts.txRateLimiter, { ...clockOpts, onUnblocked: () => this.guarded('TX after the rate limiter', () => { this.metrics.txRateLimiterEvents++; this.processTx(); }) });
    this.rxChains = new RxChains(this.ifaceId, this.metrics, this.log);
    this.tx = new NetTx({
      ifaceId: this.ifaceId, backend: this.backend, mmds: this.mmds, metrics: this.metrics, log: this.log, host: this.host,
      mac: () => this.mac, mmdsTookFrame: () => this.armMmdsTimer(),
    });
    this.txRequests = new LimitedDrain(this.txLimiter, {
      next: () => this.tx.nextChain(this.active!.tx),
      bytes: (chain) => chain.readableBytes - VNET_HDR_SIZE,
      run: (chain) => this.tx.transmit(this.active!.memory, this.active!.tx, chain),
      throttled: () => { this.metrics.txRateLimiterThrottled++; },
    });
  }

  /** The MAC in the config space now (the guest may have written a new one). */
  get guestMac(): Buffer | undefined { return this.mac && Buffer.from(this.mac); }

  readConfig(offset: number, data: Buffer): void { readConfigBytes(this.config, offset, data); }

  /** Only the MAC is writable (legacy drivers and Firecracker's tests set it this way); other bytes are ignored. */
  writeConfig(offset: number, data: Buffer): void {
    const end = Math.min(offset + data.length, CONFIG_MAC + 6);
    if (offset < CONFIG_MAC || offset >= end) {
      this.metrics.cfgFails++;
      this.log.warn(`virtio-net ${this.ifaceId}: ignoring a write of ${data.length} bytes at config offset ${offset}: only the MAC is writable.`);
      return;
    }
    data.copy(this.config, offset, 0, end - offset);
    this.mac = Buffer.from(this.config.subarray(CONFIG_MAC, CONFIG_MAC + 6));
    this.metrics.macAddressUpdates++;
  }

  activate(memory: GuestMemory, queues: readonly Queue[], interrupt: VirtioInterrupt, features: bigint): void {
    try {
      this.backend.setOffloads(tapOffloads(features));
    } catch (err) {
      this.metrics.activateFails++;
      throw err;
    }
    const watch = this.fds.watch(this.backend.fd, (events) => this.guarded('a TAP event', () => this.onTapEvent(events)), FD_READABLE);
    this.active = { memory, rx: queues[RX_QUEUE], tx: queues[TX_QUEUE], interrupt, mergeable: hasFeature(features, NetFeature.MRG_RXBUF), watch };
    this.tapReadable = true;
    this.processRx();
  }

  reset(): void {
    const a = this.active;
    this.active = undefined;
    a?.watch.close();
    this.rxChains.clear();
    this.rxLength = 0;
    this.rxAdmitted = false;
    this.txRequests.clear();
    this.clearTimers();
  }

  processQueue(index: number): void {
    if (index === RX_QUEUE) {
      this.metrics.rxQueueEvents++;
      this.processRx();
    } else if (index === TX_QUEUE) {
      this.metrics.txQueueEvents++;
      this.processTx();
    }
  }

  /** PATCH /network-interfaces/{id}: replaces buckets (RateLimiter.update semantics). */
  update(u: NetUpdate): void {
    if (u.rxRateLimiter !== undefined) this.rxLimiter.update(u.rxRateLimiter);
    if (u.txRateLimiter !== undefined) this.txLimiter.update(u.txRateLimiter);
  }

  /** While the VM is paused nothing is read from the TAP or the queues. */
  setPaused(paused: boolean): void {
    this.paused = paused;
    if (paused) this.setTapReadable(false);
    else {
      this.processTx();
      this.processRx();
    }
  }

  /**
   * Per queue, chains popped but not used, for a snapshot: RX buffers reserved for a waiting
   * frame, a TX frame held by the rate limiter. They are the last ones popped, so the restored
   * queue pops them again. (A hostile driver's too-small RX chain returned between two reserved
   * ones would be returned twice after a restore; Linux never posts one.)
   */
  heldChains(): number[] {
    const held = [0, 0];
    held[RX_QUEUE] = this.rxChains.held;
    held[TX_QUEUE] = this.txRequests.holding ? 1 : 0;
    return held;
  }

  /** The interface's own state for a snapshot of the paused VM. */
  saveState(): NetState {
    return {
      mac: this.guestMac,
      rxFrame: this.rxLength > 0 ? Buffer.from(this.rxFrame.subarray(0, this.rxLength)) : undefined,
      rxAdmitted: this.rxAdmitted,
      rxLimiter: this.rxLimiter.saveState(),
      txLimiter: this.txLimiter.saveState(),
    };
  }

  /**
   * Puts a saved state on this fresh device before its transport is restored (which activates
   * it, so the waiting frame goes to the guest first). Throws, changing nothing, on a state that
   * is not an interface's.
   */
  restoreState(state: unknown): void {
    const s = state as Partial<NetState> | null;
    const frame = s?.rxFrame;
    if (typeof s !== 'object' || s === null || (s.mac !== undefined && (!Buffer.isBuffer(s.mac) || s.mac.length !== 6))
      || (frame !== undefined && (!Buffer.isBuffer(frame) || frame.length < VNET_HDR_SIZE + ETH_HEADER || frame.length > MAX_BUFFER_SIZE))) {
      throw new RangeError(`virtio-net ${this.ifaceId}: the snapshot's interface state is malformed.`);
    }
    // The MAC the guest last wrote; the rest of the config space comes from this VM's configuration.
    if (s.mac !== undefined) {
      this.mac = Buffer.from(s.mac);
      this.mac.copy(this.config, CONFIG_MAC);
    }
    this.rxLength = frame?.copy(this.rxFrame) ?? 0;
    this.rxAdmitted = this.rxLength > 0 && s.rxAdmitted === true;
    this.rxLimiter.restoreState(s.rxLimiter);
    this.txLimiter.restoreState(s.txLimiter);
  }

  dispose(): void {
    this.rxLimiter.dispose();
    this.txLimiter.dispose();
    this.reset();
    this.backend.close();
  }

  // ---- RX ----

  private onTapEvent(events: number): void {
    if (events < 0) {
      this.metrics.eventFails++;
      this.host.error(`virtio-net ${this.ifaceId}: watching the TAP ${this.backend.name} failed (errno ${-events}).`);
      return;
    }
    this.metrics.rxTapEvents++;
    this.processRx();
  }

  private processRx(): void {
    const a = this.active;
    if (a === undefined || this.paused) return;
    let moved = 0;
    let more = false;
    for (;;) {
      if (this.rxLength === 0 && !this.nextRxFrame()) break;
      if (!this.rxAdmitted) {
        if (!admitRequest(this.rxLimiter, this.rxLength - VNET_HDR_SIZE)) {
          this.metrics.rxRateLimiterThrottled++;
          this.setTapReadable(false);
          break;
        }
        this.rxAdmitted = true;
      }
      const outcome = this.rxChains.deliver(this.rxFrame, this.rxLength, a.rx, a.memory, a.mergeable);
      if (outcome === 'no-buffers') {
        this.metrics.noRxAvailBuffer++;
        this.setTapReadable(false);
        break;
      }
      this.rxLength = 0;
      this.rxAdmitted = false;
      if (++moved >= RX_BATCH) {
        more = true;
        break;
      }
    }
    a.interrupt.signalUsed(a.rx);
    if (this.mmds !== undefined) this.armMmdsTimer();
    // MMDS frames do not make the TAP readable: come back for them on the next turn.
    if (more && this.mmds?.hasPending()) this.schedule('rx', 0);
  }

  /** Takes the next frame into rxFrame (MMDS first, then the TAP); false when there is none. */
  private nextRxFrame(): boolean {
    if (this.mmds !== undefined && this.mmds.hasPending()) {
      const n = this.mmds.writeNextFrame(this.rxFrame.subarray(VNET_HDR_SIZE, VNET_HDR_SIZE + MMDS_FRAME_MAX));
      if (n > 0) {
        this.rxFrame.fill(0, 0, VNET_HDR_SIZE); // complete checksums, no GSO
        this.rxLength = VNET_HDR_SIZE + n;
        return true;
      }
    }
    for (;;) {
      const n = this.backend.read(this.rxFrame);
      if (n === -EAGAIN) {
        this.setTapReadable(true);
        return false;
      }
      if (n < 0) {
        this.metrics.tapReadFails++;
        this.host.error(`virtio-net ${this.ifaceId}: reading the TAP ${this.backend.name} failed (errno ${-n}); trying again in ${READ_ERROR_BACKOFF_MS} ms.`);
        this.setTapReadable(false);
        this.schedule('rx', READ_ERROR_BACKOFF_MS);
        return false;
      }
      if (n >= VNET_HDR_SIZE + ETH_HEADER) {
        this.rxLength = n;
        return true;
      }
      this.metrics.rxFails++; // a runt from the host: nothing the guest could use
    }
  }

  private setTapReadable(on: boolean): void {
    const a = this.active;
    if (a === undefined || on === this.tapReadable) return;
    this.tapReadable = on;
    a.watch.setEvents(on ? FD_READABLE : 0);
  }

  // ---- TX ----

  private processTx(): void {
    const a = this.active;
    if (a === undefined || this.paused || this.txRequests.blocked) return;
    const mmdsBefore = this.mmds?.hasPending() ?? false;
    this.txRequests.drain();
    if (this.txRequests.blocked) this.metrics.txRemainingReqs++;
    a.interrupt.signalUsed(a.tx);
    if (this.mmds !== undefined && !mmdsBefore && this.mmds.hasPending()) this.processRx();
  }

  // ---- timers ----

  /**
   * Arms a timer for MMDS's next retransmission. Not while a frame waits for an RX buffer: the
   * guest adding buffers runs RX again, which re-arms it. At least 1 ms ahead, so a deadline
   * that is already due can never make a timer loop.
   */
  private armMmdsTimer(): void {
    if (this.mmdsTimer !== undefined) this.timers.clearTimeout(this.mmdsTimer);
    this.mmdsTimer = undefined;
    const due = this.mmds?.nextDeadlineMs();
    if (due === undefined || this.rxLength > 0 || this.active === undefined) return;
    const nowMs = Number(this.clock.nowNs() / 1_000_000n);
    this.mmdsTimer = this.timers.setTimeout(() => this.guarded('an MMDS retransmission', () => {
      this.mmdsTimer = undefined;
      this.processRx();
      if (this.mmdsTimer === undefined) this.armMmdsTimer();
    }), Math.max(1, due - nowMs));
  }

  private schedule(_what: 'rx', delayMs: number): void {
    if (this.rxTimer !== undefined) return;
    this.rxTimer = this.timers.setTimeout(() => this.guarded('RX', () => {
      this.rxTimer = undefined;
      this.processRx();
    }), delayMs);
  }

  private clearTimers(): void {
    if (this.rxTimer !== undefined) this.timers.clearTimeout(this.rxTimer);
    if (this.mmdsTimer !== undefined) this.timers.clearTimeout(this.mmdsTimer);
    this.rxTimer = this.mmdsTimer = undefined;
  }

  /** Callbacks from the loop (fd events, timers) run outside the transport's guard: never throw. */
  private guarded(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.metrics.eventFails++;
      this.host.error(`virtio-net ${this.ifaceId}: handling ${what} failed: ${(err as Error).message}`);
    }
  }
}
