/**
 * One passively opened TCP connection carrying HTTP requests to MMDS (the server side only:
 * SYN-RECEIVED, ESTABLISHED, then closing after the peer's FIN). Deliberately small: in-order
 * data only (anything else is dropped and re-acknowledged), one response in flight at a time,
 * go-back-N retransmission on a fixed timeout, a bounded receive buffer. No method throws on
 * anything a guest can send.
 */
import { findRequestEnd, MAX_REQUEST_BYTES } from '../http';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, type TcpSegment } from './packets';

/** Bytes of request the connection buffers; the advertised window never exceeds it. */
export const RECEIVE_BUFFER_BYTES = MAX_REQUEST_BYTES;
/** The MSS a peer is assumed to take when its SYN does not say (RFC 9293). */
export const DEFAULT_PEER_MSS = 536;
/** The MSS MMDS advertises (an Ethernet MTU of 1500). */
export const LOCAL_MSS = 1460;
export const RETRANSMIT_TIMEOUT_MS = 300;
/** Timeouts in a row without progress before the connection gives up with a reset. */
export const MAX_RETRANSMISSIONS = 15;

/** a - b in sequence space, as a signed 32-bit distance. */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

const add = (seq: number, n: number): number => (seq + n) >>> 0;

export type RequestResponder = (head: Uint8Array) => Uint8Array;

export interface ReceiveOutcome {
  /** The segment was odd (out of order, bad ACK, unexpected flags): counted by the caller. */
  unusual: boolean;
}

export class TcpConnection {
  readonly localPort: number;
  readonly remotePort: number;
  lastReceivedMs: number;

  private established = false;
  private readonly iss: number;
  private sndUna: number;
  private sndNxt: number;
  private peerWindowEdge: number;
  private readonly peerMss: number;
  private rcvNxt: number;
  private readonly irs: number;

  private readonly rcvBuf = new Uint8Array(RECEIVE_BUFFER_BYTES);
  private rcvLen = 0;
  /** Response bytes not yet acknowledged; sendBuf[0] has sequence number sndBufSeq. */
  private sendBuf: Uint8Array = new Uint8Array(0);
  private sndBufSeq: number;

  private ackPending = false;
  private rstPending = false;
  private finReceived = false;
  /** Sequence number of our FIN, once we decided to close. */
  private finSeq?: number;
  private done = false;
  private rtoDeadlineMs?: number;
  private retransmissions = 0;

  constructor(syn: TcpSegment, iss: number, nowMs: number, private readonly respond: RequestResponder) {
    this.localPort = syn.dstPort;
    this.remotePort = syn.srcPort;
    this.irs = syn.seq;
    this.rcvNxt = add(syn.seq, 1);
    this.iss = iss >>> 0;
    this.sndUna = this.iss;
    this.sndNxt = this.iss; // the SYN-ACK is not sent yet
    this.sndBufSeq = add(this.iss, 1);
    this.peerWindowEdge = add(this.iss, 1 + syn.window);
    this.peerMss = syn.mss && syn.mss > 0 ? syn.mss : DEFAULT_PEER_MSS;
    this.lastReceivedMs = nowMs;
  }

  /** True once the connection has nothing left to do and can be forgotten. */
  isDone(): boolean {
    return this.done;
  }

  /** Sends a reset at the next opportunity and then ends. */
  reset(): void {
    this.rstPending = true;
  }

  receive(seg: TcpSegment, nowMs: number): ReceiveOutcome {
    if (this.done || this.rstPending) return { unusual: true };
    this.lastReceivedMs = nowMs;
    if (seg.flags & TCP_RST) {
      // only a reset at the edge of what we expect ends the connection (RFC 5961's blind-reset rule)
      if (seg.seq === this.rcvNxt) this.done = true;
      return { unusual: true };
    }
    if (seg.flags & TCP_SYN) {
      if (!this.established && seg.seq === this.irs) {
        this.sndNxt = this.sndUna; // our SYN-ACK was lost: send it again
        return { unusual: true };
      }
      this.rstPending = true;
      return { unusual: true };
    }
    if (!(seg.flags & TCP_ACK)) return { unusual: true };
    let unusual = false;
    if (seqDiff(seg.ack, this.sndNxt) > 0) {
      this.ackPending = true; // acknowledges what we never sent
      return { unusual: true };
    }
    if (seqDiff(seg.ack, this.sndUna) >= 0) {
      this.acknowledge(seg.ack, nowMs);
      this.peerWindowEdge = add(seg.ack, seg.window);
    }
    if (!this.established) return { unusual: true };
    unusual = this.acceptData(seg) || unusual;
    this.serveRequests();
    if (this.finReceived && this.sendBuf.length === 0 && this.finSeq === undefined) this.finSeq = this.sndNxt;
    if (this.finSeq !== undefined && this.finReceived && seqDiff(this.sndUna, this.finSeq) > 0) this.done = true;
    return { unusual };
  }

  private acknowledge(ack: number, nowMs: number): void {
    const advanced = seqDiff(ack, this.sndUna);
    if (advanced > 0) {
      if (!this.established && seqDiff(ack, this.iss) > 0) this.established = true;
      const dataAcked = Math.max(0, Math.min(seqDiff(ack, this.sndBufSeq), this.sendBuf.length));
      if (dataAcked > 0) {
        this.sendBuf = this.sendBuf.subarray(dataAcked);
        this.sndBufSeq = add(this.sndBufSeq, dataAcked);
      }
      this.sndUna = ack;
      this.retransmissions = 0;
    }
    this.rtoDeadlineMs = this.sndUna === this.sndNxt ? undefined : advanced > 0 ? nowMs + RETRANSMIT_TIMEOUT_MS : this.rtoDeadlineMs;
  }

  /** Takes in-order bytes and the FIN; returns true when the segment was out of order. */
  private acceptData(seg: TcpSegment): boolean {
    const length = seg.payload.length;
    const offset = seqDiff(this.rcvNxt, seg.seq);
    if (offset < 0) {
      if (length > 0 || seg.flags & TCP_FIN) this.ackPending = true;
      return true;
    }
    if (length > 0) {
      this.ackPending = true;
      if (offset < length) {
        const fresh = seg.payload.subarray(offset);
        const take = Math.min(fresh.length, RECEIVE_BUFFER_BYTES - this.rcvLen);
        this.rcvBuf.set(fresh.subarray(0, take), this.rcvLen);
        this.rcvLen += take;
        this.rcvNxt = add(this.rcvNxt, take);
      }
    }
    if (seg.flags & TCP_FIN) {
      this.ackPending = true;
      if (!this.finReceived && add(seg.seq, length) === this.rcvNxt) {
        this.finReceived = true;
        this.rcvNxt = add(this.rcvNxt, 1);
      }
    }
    // wholly old (a retransmission, or a keep-alive probe one byte back): tell the peer where we are
    if (offset > length) this.ackPending = true;
    return offset > length;
  }

  /** Answers the next buffered request once the previous answer is fully acknowledged. */
  private serveRequests(): void {
    if (this.sendBuf.length > 0 || this.finSeq !== undefined) return;
    const end = findRequestEnd(this.rcvBuf, this.rcvLen);
    if (end < 0) {
      if (this.rcvLen === RECEIVE_BUFFER_BYTES) this.rstPending = true; // a request larger than we hold
      return;
    }
    const response = this.respond(this.rcvBuf.slice(0, end));
    this.rcvBuf.copyWithin(0, end, this.rcvLen);
    this.rcvLen -= end;
    this.sendBuf = response;
    this.sndBufSeq = this.sndNxt;
  }

  /** True when nextSegment would return something now. */
  hasSegment(nowMs: number): boolean {
    return this.nextKind(nowMs) !== undefined;
  }

  /** When a retransmission falls due, for a caller that wakes up on timers. */
  nextDeadlineMs(): number | undefined {
    return this.done ? undefined : this.rtoDeadlineMs;
  }

  private nextKind(nowMs: number): 'rst' | 'timeout' | 'syn' | 'data' | 'fin' | 'ack' | undefined {
    if (this.done) return undefined;
    if (this.rstPending) return 'rst';
    if (this.rtoDeadlineMs !== undefined && nowMs >= this.rtoDeadlineMs) return 'timeout';
    if (this.sndNxt === this.iss) return 'syn';
    if (this.established && this.sendableBytes() > 0) return 'data';
    if (this.established && this.finSeq !== undefined && this.sndNxt === this.finSeq) return 'fin';
    if (this.ackPending) return 'ack';
    return undefined;
  }

  private sendableBytes(): number {
    const unsent = seqDiff(add(this.sndBufSeq, this.sendBuf.length), this.sndNxt);
    const window = seqDiff(this.peerWindowEdge, this.sndNxt);
    return Math.max(0, Math.min(unsent, window));
  }

  /** The next segment to send, at most `maxPayload` bytes of data; undefined when none is due. */
  nextSegment(nowMs: number, maxPayload: number): TcpSegment | undefined {
    let kind = this.nextKind(nowMs);
    if (kind === 'timeout') {
      this.retransmissions++;
      if (this.retransmissions > MAX_RETRANSMISSIONS) {
        kind = 'rst';
      } else {
        this.sndNxt = this.sndUna; // go back and resend from the first unacknowledged byte
        this.rtoDeadlineMs = nowMs + RETRANSMIT_TIMEOUT_MS;
        kind = this.nextKind(nowMs);
      }
    }
    const base = { srcPort: this.localPort, dstPort: this.remotePort, ack: this.rcvNxt, window: this.window() };
    switch (kind) {
      case 'rst':
        this.done = true;
        return { ...base, seq: this.sndNxt, flags: TCP_RST | TCP_ACK, window: 0, payload: new Uint8Array(0) };
      case 'syn':
        this.sndNxt = add(this.iss, 1);
        this.armTimer(nowMs);
        return { ...base, seq: this.iss, flags: TCP_SYN | TCP_ACK, mss: LOCAL_MSS, payload: new Uint8Array(0) };
      case 'data': {
        const size = Math.min(this.sendableBytes(), this.peerMss, Math.max(0, maxPayload));
        if (size === 0) return undefined;
        const start = seqDiff(this.sndNxt, this.sndBufSeq);
        const payload = this.sendBuf.subarray(start, start + size);
        const seq = this.sndNxt;
        this.sndNxt = add(this.sndNxt, size);
        const last = start + size === this.sendBuf.length;
        this.finishSend(nowMs);
        return { ...base, seq, flags: TCP_ACK | (last ? TCP_PSH : 0), payload };
      }
      case 'fin': {
        const seq = this.sndNxt;
        this.sndNxt = add(this.sndNxt, 1);
        this.finishSend(nowMs);
        return { ...base, seq, flags: TCP_FIN | TCP_ACK, payload: new Uint8Array(0) };
      }
      case 'ack':
        this.ackPending = false;
        return { ...base, seq: this.sndNxt, flags: TCP_ACK, payload: new Uint8Array(0) };
      default:
        return undefined;
    }
  }

  private finishSend(nowMs: number): void {
    this.ackPending = false;
    this.armTimer(nowMs);
  }

  private armTimer(nowMs: number): void {
    if (this.rtoDeadlineMs === undefined) this.rtoDeadlineMs = nowMs + RETRANSMIT_TIMEOUT_MS;
  }

  private window(): number {
    return RECEIVE_BUFFER_BYTES - this.rcvLen;
  }
}
