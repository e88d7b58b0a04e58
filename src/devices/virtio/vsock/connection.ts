/**
 * One vsock stream connection between a guest socket and a host Unix socket (virtio 1.2,
 * 5.10.6.3-5.10.6.6): the state machine and both directions of credit flow control.
 *
 * Towards the guest we send at most what the guest's last advertised credit allows
 * (buf_alloc - (sent - fwd_cnt)); past that we ask for credit and stop reading the host socket,
 * so the kernel's socket buffer pushes back on the host program. From the guest we accept at most
 * CONN_BUF_ALLOC bytes not yet handed to the kernel; fwd_cnt advances as node:net flushes them,
 * and a credit update tells the guest. Either way a slow reader costs a bounded amount of memory.
 */
import type { HostStream } from './host-net';
import { HOST_CID, Op, Packet, PacketHeader, Shutdown, TYPE_STREAM, wrapDiff } from './packet';

/** The receive buffer we advertise to the guest for each connection. */
export const CONN_BUF_ALLOC = 256 * 1024;
/** Tell the guest about freed space once this much is unreported (or when it asks). */
export const CREDIT_UPDATE_THRESHOLD = CONN_BUF_ALLOC / 4;
/** Stop reading the host socket once this much host data waits for guest credit or rx buffers. */
export const HOST_READ_HIGH_WATER = 64 * 1024;

export type ConnState =
  /** Host-initiated: REQUEST sent, waiting for the guest's RESPONSE or RST. */
  | 'local-init'
  /** Guest-initiated: connecting to the host listener `<uds_path>_<port>`. */
  | 'peer-init'
  | 'established'
  /** RST queued or sent; the connection is gone once it left. */
  | 'closed';

/** What a connection needs from the muxer. */
export interface ConnectionHost {
  readonly guestCid: number;
  /** There is something to send to the guest. */
  schedule(conn: Connection): void;
  /** The connection ended; `killed` when it ended by RST rather than an orderly close. */
  removed(conn: Connection, killed: boolean): void;
  /** The handshake completed (host-initiated: the `OK <port>` line goes to the host). */
  established(conn: Connection): void;
  /**
   * The host socket is gone while the connection still has bytes for the guest or waits for the
   * guest's RST: the host resets it once the guest stops making progress (deliveredMark).
   */
  hostGone(conn: Connection): void;
  readonly counters: { rxBytes: number; txBytes: number; txWriteFails: number; rxReadFails: number };
}

export class Connection {
  state: ConnState;
  /** The guest's view of its receive buffer, from the header of its last packet. */
  private peerBufAlloc = 0;
  private peerFwdCnt = 0;
  /** Payload bytes we sent to the guest. */
  private txCnt = 0;
  /** Payload bytes the guest sent us, and how many of them reached the host kernel. */
  private rxCnt = 0;
  private fwdCnt = 0;
  private lastFwdCntSent = 0;
  /** Host bytes waiting for credit or for an rx buffer. */
  private readonly toGuest: Buffer[] = [];
  private toGuestBytes = 0;
  private readonly controls: Array<{ op: number; flags: number }> = [];
  private creditRequested = false;
  private hostPaused = false;
  /** The host sent FIN (we then SHUTDOWN SEND once its bytes went to the guest). */
  private hostEnded = false;
  private sentShutdown = 0;
  /** What the guest said it will no longer do (SHUTDOWN flags). */
  private peerShutdown = 0;

  constructor(
    readonly localPort: number,
    readonly peerPort: number,
    readonly stream: HostStream,
    state: 'local-init' | 'peer-init',
    private readonly host: ConnectionHost,
  ) {
    this.state = state;
    stream.on('data', (chunk: Buffer) => this.onHostData(chunk));
    stream.on('end', () => this.onHostEnd());
    stream.on('error', () => this.onHostGone(true));
    stream.on('close', () => this.onHostGone(false));
    if (state === 'local-init') this.queueControl(Op.REQUEST);
  }

  get key(): string { return connKey(this.localPort, this.peerPort); }

  /** Host bytes that arrived before the handshake (after the CONNECT line): sent once established. */
  pushEarlyData(data: Buffer): void {
    if (data.length > 0) this.onHostData(data);
  }

  /** Records the guest's receive buffer from a packet's header (its REQUEST, say). */
  noteCredit(h: PacketHeader): void {
    this.peerBufAlloc = h.bufAlloc;
    this.peerFwdCnt = h.fwdCnt;
  }

  /** A packet from the guest addressed to this connection. */
  onGuestPacket(h: PacketHeader, payload: Buffer): void {
    if (this.state === 'closed') return;
    this.peerBufAlloc = h.bufAlloc;
    this.peerFwdCnt = h.fwdCnt;
    switch (h.op) {
      case Op.RESPONSE:
        if (this.state !== 'local-init') return this.reset();
        this.state = 'established';
        this.host.established(this);
        break;
      case Op.RST:
        this.close(false);
        return;
      case Op.RW:
        if (this.state !== 'established' || this.peerShutdown & Shutdown.SEND) return this.reset();
        this.fromGuest(payload);
        break;
      case Op.SHUTDOWN:
        if (this.state !== 'established') return this.reset();
        this.onPeerShutdown(h.flags & Shutdown.BOTH);
        break;
      case Op.CREDIT_REQUEST:
        if (this.state !== 'established') return this.reset();
        this.queueControl(Op.CREDIT_UPDATE);
        break;
      case Op.CREDIT_UPDATE:
        break;
      default: // REQUEST for a live connection, or an unknown op
        return this.reset();
    }
    if ((this.state as ConnState) === 'closed') return;
    // New credit may let waiting host bytes go, and let us read the host socket again.
    if (this.peerCredit() > 0) this.creditRequested = false;
    if (this.hasOutput()) this.wake();
    this.updateHostReading();
  }

  /** The host listener for a guest-initiated connection accepted it. */
  hostConnected(): void {
    if (this.state !== 'peer-init') return;
    this.state = 'established';
    this.queueControl(Op.RESPONSE);
  }

  /** Whether nextPacket() has something to send. */
  hasOutput(): boolean {
    if (this.controls.length > 0 || this.shutdownDue()) return true;
    // Host bytes wait: send them if the guest has room, else ask it (once) for credit.
    return this.state === 'established' && this.toGuestBytes > 0 && (this.peerCredit() > 0 || !this.creditRequested);
  }

  /** The next packet for the guest, its payload at most `maxPayload` bytes. */
  nextPacket(maxPayload: number): Packet | undefined {
    const control = this.controls.shift();
    if (control !== undefined) {
      if (control.op === Op.RST) {
        this.controls.length = 0;
        this.finish(!this.orderly);
      }
      return this.packet(control.op, control.flags, Buffer.alloc(0));
    }
    if (this.state === 'established' && this.toGuestBytes > 0) {
      const n = Math.min(maxPayload, this.toGuestBytes, this.peerCredit());
      if (n > 0) {
        const payload = this.takeToGuest(n);
        this.txCnt = (this.txCnt + n) >>> 0;
        this.host.counters.rxBytes += n;
        this.updateHostReading();
        return this.packet(Op.RW, 0, payload);
      }
      if (this.peerCredit() === 0 && !this.creditRequested) {
        this.creditRequested = true;
        return this.packet(Op.CREDIT_REQUEST, 0, Buffer.alloc(0));
      }
    }
    if (this.shutdownDue()) {
      this.sentShutdown |= Shutdown.SEND;
      return this.packet(Op.SHUTDOWN, Shutdown.SEND, Buffer.alloc(0));
    }
    return undefined;
  }

  /** Ends the connection with RST to the guest and closes the host socket. */
  reset(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.stream.destroy();
    this.toGuest.length = 0;
    this.toGuestBytes = 0;
    this.controls.length = 0;
    this.queueControl(Op.RST);
  }

  /** Ends the connection without telling the guest (it sent RST, or the device was reset). */
  close(killed: boolean): void {
    if (this.state === 'closed' && this.controls.length === 0) return;
    this.state = 'closed';
    this.controls.length = 0;
    this.stream.destroy();
    this.finish(killed);
  }

  private finished = false;
  private finish(killed: boolean): void {
    if (this.finished) return;
    this.finished = true;
    this.host.removed(this, killed);
  }

  private peerCredit(): number {
    const inFlight = wrapDiff(this.txCnt, this.peerFwdCnt);
    return inFlight >= this.peerBufAlloc ? 0 : this.peerBufAlloc - inFlight;
  }

  private shutdownDue(): boolean {
    return this.state === 'established' && this.hostEnded && this.toGuestBytes === 0 && !(this.sentShutdown & Shutdown.SEND);
  }

  private fromGuest(payload: Buffer): void {
    const unforwarded = wrapDiff(this.rxCnt, this.fwdCnt);
    if (unforwarded + payload.length > CONN_BUF_ALLOC) {
      // The guest sent past the credit we gave it: a driver bug or hostility. That connection ends.
      this.reset();
      return;
    }
    if (payload.length === 0) return;
    this.rxCnt = (this.rxCnt + payload.length) >>> 0;
    this.host.counters.txBytes += payload.length;
    this.stream.write(payload, (err) => {
      if (err) return; // 'error' follows and resets the connection
      this.fwdCnt = (this.fwdCnt + payload.length) >>> 0;
      if (this.state === 'established' && wrapDiff(this.fwdCnt, this.lastFwdCntSent) >= CREDIT_UPDATE_THRESHOLD) {
        this.queueControl(Op.CREDIT_UPDATE);
      }
    });
  }

  private onPeerShutdown(flags: number): void {
    const added = flags & ~this.peerShutdown;
    this.peerShutdown |= flags;
    if (added & Shutdown.SEND) this.stream.end();
    if (added & Shutdown.RCV) {
      this.toGuest.length = 0;
      this.toGuestBytes = 0;
    }
    if (this.peerShutdown === Shutdown.BOTH) {
      // The guest closed its socket; it waits for our RST. Bytes already queued for the host
      // still reach it (end() flushes before FIN).
      this.state = 'closed';
      this.stream.removeAllListeners('data');
      this.orderly = true;
      this.queueControl(Op.RST);
    }
  }
  private orderly = false;

  private onHostData(chunk: Buffer): void {
    if (this.state === 'closed' || this.peerShutdown & Shutdown.RCV) return;
    this.toGuest.push(chunk);
    this.toGuestBytes += chunk.length;
    this.updateHostReading();
    if (this.state === 'established') this.wake();
  }

  private onHostEnd(): void {
    if (this.state === 'closed') return;
    this.hostEnded = true;
    this.wake();
  }

  /** The host socket closed or failed: an EPIPE ends this connection only. */
  private onHostGone(failed: boolean): void {
    if (this.state === 'closed') return;
    if (failed) this.host.counters.txWriteFails++;
    // Whatever the host sent before closing still goes to the guest when the close was orderly
    // (FIN then close); a failure or a close before the handshake is a reset.
    if (!failed && this.state === 'established' && this.hostEnded) {
      this.host.hostGone(this);
      return;
    }
    this.reset();
  }

  /** The guest's fwd_cnt: it moves while the guest takes the bytes sent to it. */
  get deliveredMark(): number {
    return this.peerFwdCnt;
  }

  private updateHostReading(): void {
    const hold = this.state !== 'closed' && (this.toGuestBytes >= HOST_READ_HIGH_WATER || (this.toGuestBytes > 0 && this.peerCredit() === 0 && this.state === 'established'));
    if (hold && !this.hostPaused) {
      this.hostPaused = true;
      this.stream.pause();
    } else if (!hold && this.hostPaused) {
      this.hostPaused = false;
      this.stream.resume();
    }
  }

  private takeToGuest(n: number): Buffer {
    const parts: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const head = this.toGuest[0];
      if (head.length <= left) {
        parts.push(head);
        this.toGuest.shift();
        left -= head.length;
      } else {
        parts.push(head.subarray(0, left));
        this.toGuest[0] = head.subarray(left);
        left = 0;
      }
    }
    this.toGuestBytes -= n;
    return parts.length === 1 ? parts[0] : Buffer.concat(parts, n);
  }

  private queueControl(op: number, flags = 0): void {
    if (op === Op.CREDIT_UPDATE && this.controls.some((c) => c.op === Op.CREDIT_UPDATE)) return;
    this.controls.push({ op, flags });
    this.wake();
  }

  private wake(): void {
    this.host.schedule(this);
  }

  private packet(op: number, flags: number, payload: Buffer): Packet {
    this.lastFwdCntSent = this.fwdCnt;
    const header: PacketHeader = {
      srcCid: HOST_CID, dstCid: this.host.guestCid, srcPort: this.localPort, dstPort: this.peerPort,
      len: payload.length, type: TYPE_STREAM, op, flags, bufAlloc: CONN_BUF_ALLOC, fwdCnt: this.fwdCnt,
    };
    return { header, payload };
  }
}

export function connKey(localPort: number, peerPort: number): string {
  return `${localPort}:${peerPort}`;
}
