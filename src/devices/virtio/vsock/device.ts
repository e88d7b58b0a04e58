/**
 * virtio-vsock (virtio 1.2, 5.10): rx (0), tx (1) and event (2) queues, a config space holding
 * the guest's CID, stream sockets only. The transport side is here; connections and the host
 * Unix sockets are the muxer's. Every guest packet is checked before it reaches the muxer, and a
 * malformed one is returned to the driver and counted: the guest can end its own connections,
 * never the VMM.
 */
import type { GuestMemory } from '../../../memory/guest-memory';
import { SparklerError } from '../../../errors';
import type { Timers } from '../../../ratelimit/clock';
import { DeviceType } from '../constants';
import type { VirtioDevice, VirtioInterrupt } from '../device';
import { readConfigBytes } from '../device';
import type { LogSink } from '../guest-log';
import type { Queue } from '../queue';
import type { HostNet } from './host-net';
import { VsockMetrics } from './metrics';
import { VsockMuxer } from './muxer';
import { decodeHeader, encodeHeader, HEADER_SIZE, MAX_PAYLOAD } from './packet';

export const VSOCK_QUEUE_SIZE = 256;
export const RX_QUEUE = 0;
export const TX_QUEUE = 1;
export const EVENT_QUEUE = 2;
/** struct virtio_vsock_event's id (spec 5.10.6.7): the driver drops every connection and re-reads the CID. */
export const VIRTIO_VSOCK_EVENT_TRANSPORT_RESET = 0;

/** The device's part of a snapshot: host connections are not kept (Firecracker's rule), so only the CID. */
export interface VsockSavedState {
  guestCid: number;
}

export interface VirtioVsockOptions {
  guestCid: number;
  udsPath: string;
  net: HostNet;
  log: LogSink;
  host: LogSink;
  timers: Timers;
  maxConnections?: number;
}

interface Active {
  memory: GuestMemory;
  rx: Queue;
  tx: Queue;
  ev: Queue;
  interrupt: VirtioInterrupt;
}

export class VirtioVsock implements VirtioDevice {
  readonly deviceType = DeviceType.Vsock;
  readonly queueMaxSizes = [VSOCK_QUEUE_SIZE, VSOCK_QUEUE_SIZE, VSOCK_QUEUE_SIZE];
  /** No feature bits: stream sockets only (no VIRTIO_VSOCK_F_SEQPACKET). */
  readonly features = 0n;
  readonly metrics = new VsockMetrics();
  readonly muxer: VsockMuxer;
  private readonly config = Buffer.alloc(8);
  private readonly log: LogSink;
  private readonly timers: Timers;
  private readonly guestCid: number;
  /** Set by a restore: the restored driver still holds connections whose host side is gone. */
  private resetOnActivate = false;
  private active: Active | undefined;
  private draining = false;
  private drainAgain = false;

  constructor(opts: VirtioVsockOptions) {
    this.config.writeBigUInt64LE(BigInt(opts.guestCid));
    this.log = opts.log;
    this.timers = opts.timers;
    this.guestCid = opts.guestCid;
    this.muxer = new VsockMuxer({ ...opts, metrics: this.metrics, wake: () => this.drainRx() });
  }

  /** Starts listening on uds_path (before the guest's driver is up, as Firecracker does). */
  listen(): void {
    this.muxer.listen();
  }

  /** Config space (spec 5.10.4): le64 guest_cid, read-only. */
  readConfig(offset: number, data: Buffer): void { readConfigBytes(this.config, offset, data); }
  writeConfig(): void { this.metrics.cfgFails++; }

  activate(memory: GuestMemory, queues: readonly Queue[], interrupt: VirtioInterrupt): void {
    this.active = { memory, rx: queues[RX_QUEUE], tx: queues[TX_QUEUE], ev: queues[EVENT_QUEUE], interrupt };
    if (this.resetOnActivate) {
      this.resetOnActivate = false;
      // Later, not now: during a restore the vCPUs (and their LAPICs) do not exist yet, and an
      // interrupt raised before they do is lost. Forced: the source's reset event (in the saved
      // used ring) was signalled after KVM's interrupt state was saved, so the guest never saw it
      // and its used_event would suppress this one.
      this.timers.setTimeout(() => {
        this.sendTransportReset();
        this.active?.interrupt.forceUsedInterrupt?.();
      }, 0);
    }
    // Host connections may be waiting for the guest already.
    this.drainRx();
  }

  reset(): void {
    this.active = undefined;
    this.muxer.reset();
  }

  dispose(): void {
    this.active = undefined;
    this.muxer.dispose();
  }

  /**
   * Before a snapshot (Firecracker does the same): the host side's connections are closed and
   * the driver gets a transport-reset event, so it drops its connections too; new ones work.
   */
  sendTransportReset(): void {
    this.muxer.reset();
    const a = this.active;
    if (a === undefined) return;
    const chain = a.ev.pop();
    if (chain === undefined) {
      this.metrics.evQueueEventFails++;
      this.log.warn('virtio-vsock: no event buffer for the transport-reset event; the guest keeps its stale connections.');
      return;
    }
    const event = Buffer.alloc(4);
    event.writeUInt32LE(VIRTIO_VSOCK_EVENT_TRANSPORT_RESET, 0);
    const written = chain.write(a.memory, 0, event);
    if (written < event.length) {
      this.metrics.evQueueEventFails++;
      this.log.warn(`virtio-vsock: the event buffer at descriptor ${chain.head} has room for ${chain.writableBytes} bytes, not a 4-byte event.`);
    }
    a.ev.addUsed(chain.head, written);
    a.interrupt.signalUsed(a.ev);
  }

  saveState(): VsockSavedState {
    return { guestCid: this.guestCid };
  }

  /** On the fresh device of a restore, before its transport activates it again. */
  restoreState(state: VsockSavedState): void {
    if (state.guestCid !== this.guestCid) {
      throw new SparklerError('ESNAPSHOTDEVICE', `virtio-vsock: the snapshot's guest CID ${state.guestCid} is not the configured ${this.guestCid}.`);
    }
    this.resetOnActivate = true;
  }

  processQueue(index: number): void {
    if (index === RX_QUEUE) {
      this.metrics.rxQueueEventCount++;
      this.drainRx();
    } else if (index === TX_QUEUE) {
      this.metrics.txQueueEventCount++;
      this.processTx();
      this.drainRx();
    }
    // The event queue only holds buffers for transport-reset events (sent on snapshot).
  }

  private processTx(): void {
    const a = this.active;
    if (a === undefined) return;
    for (let chain = a.tx.pop(); chain !== undefined; chain = a.tx.pop()) {
      const invalid = (why: string) => {
        this.metrics.txQueueEventFails++;
        this.log.warn(`virtio-vsock: dropping the tx chain at descriptor ${chain!.head}: ${why}.`);
      };
      if (chain.readableBytes < HEADER_SIZE) {
        invalid(`it has ${chain.readableBytes} readable bytes, fewer than a ${HEADER_SIZE}-byte header`);
      } else {
        const header = decodeHeader(chain.read(a.memory, 0, HEADER_SIZE));
        if (header.len > MAX_PAYLOAD) invalid(`its header says ${header.len} payload bytes, more than ${MAX_PAYLOAD}`);
        else if (header.len > chain.readableBytes - HEADER_SIZE) invalid(`its header says ${header.len} payload bytes but the chain holds ${chain.readableBytes - HEADER_SIZE}`);
        else {
          const payload = chain.read(a.memory, HEADER_SIZE, header.len);
          this.metrics.txPackets++;
          try {
            this.muxer.handleGuestPacket(header, payload);
          } catch (err) {
            this.metrics.connEventFails++;
            this.log.error(`virtio-vsock: a ${header.op} packet failed: ${(err as Error).message}`);
          }
        }
      }
      a.tx.addUsed(chain.head, 0);
    }
    a.interrupt.signalUsed(a.tx);
  }

  /** Fills rx buffers with packets for the guest while both exist. Re-entrant calls are folded. */
  private drainRx(): void {
    if (this.draining) {
      this.drainAgain = true;
      return;
    }
    this.draining = true;
    try {
      do {
        this.drainAgain = false;
        this.fillRx();
      } while (this.drainAgain);
    } finally {
      this.draining = false;
    }
  }

  private fillRx(): void {
    const a = this.active;
    if (a === undefined) return;
    let used = false;
    while (this.muxer.hasOutput()) {
      const chain = a.rx.pop();
      if (chain === undefined) break;
      used = true;
      const room = Math.min(chain.writableBytes - HEADER_SIZE, MAX_PAYLOAD);
      if (room <= 0) {
        this.metrics.rxQueueEventFails++;
        this.log.warn(`virtio-vsock: returning the rx chain at descriptor ${chain.head} unused: it has room for ${chain.writableBytes} bytes, not a header and payload.`);
        a.rx.addUsed(chain.head, 0);
        continue;
      }
      const packet = this.muxer.nextPacket(room);
      if (packet === undefined) {
        a.rx.addUsed(chain.head, 0); // cannot happen: hasOutput() said there is one
        continue;
      }
      chain.write(a.memory, 0, encodeHeader(packet.header));
      chain.write(a.memory, HEADER_SIZE, packet.payload);
      this.metrics.rxPackets++;
      a.rx.addUsed(chain.head, HEADER_SIZE + packet.payload.length);
    }
    if (used) a.interrupt.signalUsed(a.rx);
  }
}
