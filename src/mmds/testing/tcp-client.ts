/**
 * A scripted guest TCP client for tests: it drives an MmdsNetworkStack with frames built by
 * frame-builder and collects what comes back, acknowledging data the way a simple peer would.
 */
import type { MmdsNetworkStack } from '../net/network-stack';
import { ACK, FIN, type ParsedFrame, PSH, SYN, parseFrame, tcpFrame } from './frame-builder';

export class TestTcpClient {
  seq: number;
  /** Next byte expected from MMDS. */
  rcvNxt = 0;
  received = Buffer.alloc(0);
  finReceived = false;
  readonly frames: ParsedFrame[] = [];

  constructor(
    private readonly stack: MmdsNetworkStack,
    readonly port: number,
    readonly dstIp = '169.254.169.254',
    isn = 1000,
    private readonly rxBufferBytes = 1526,
  ) {
    this.seq = isn;
  }

  send(flags: number, payload: Uint8Array | string = '', extra: { seq?: number; window?: number; mss?: number } = {}): boolean {
    const frame = tcpFrame({
      dstIp: this.dstIp, srcPort: this.port, seq: extra.seq ?? this.seq, ack: this.rcvNxt, flags, payload,
      window: extra.window, mss: extra.mss,
    });
    return this.stack.detour(frame);
  }

  /** Pulls every frame MMDS has for the guest; returns them parsed. */
  drain(): ParsedFrame[] {
    const out: ParsedFrame[] = [];
    for (let guard = 0; guard < 1000 && this.stack.hasPending(); guard++) {
      const buf = new Uint8Array(this.rxBufferBytes);
      const n = this.stack.writeNextFrame(buf);
      if (n === 0) break;
      out.push(parseFrame(buf.subarray(0, n)));
    }
    this.frames.push(...out);
    return out;
  }

  /** SYN, SYN-ACK, ACK. Returns the SYN-ACK. */
  connect(mss = 1460): ParsedFrame {
    this.send(SYN, '', { mss });
    const [synAck] = this.drain();
    this.seq = (this.seq + 1) >>> 0;
    this.rcvNxt = (synAck.tcp!.seq + 1) >>> 0;
    this.send(ACK);
    return synAck;
  }

  /** Sends data in one segment and advances the sequence number. */
  write(data: string | Uint8Array, flags = ACK | PSH): void {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    this.send(flags, bytes);
    this.seq = (this.seq + bytes.length) >>> 0;
  }

  /** Takes in-order data and the FIN from `frames` and acknowledges them, as a simple peer would. */
  absorb(frames: ParsedFrame[], ackEach = true): void {
    for (const f of frames) {
      const t = f.tcp;
      if (!t || t.seq !== this.rcvNxt) continue;
      if (t.payload.length > 0) {
        this.received = Buffer.concat([this.received, t.payload]);
        this.rcvNxt = (this.rcvNxt + t.payload.length) >>> 0;
      }
      if (t.flags & FIN) {
        this.finReceived = true;
        this.rcvNxt = (this.rcvNxt + 1) >>> 0;
      }
      if (ackEach && (t.payload.length > 0 || t.flags & FIN)) this.send(ACK);
    }
  }

  /** Drains and acknowledges until MMDS has nothing more to say. */
  pump(): void {
    for (let round = 0; round < 100; round++) {
      const frames = this.drain();
      if (frames.length === 0) return;
      this.absorb(frames);
    }
  }
}
