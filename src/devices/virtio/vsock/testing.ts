/**
 * Fakes for vsock tests: host streams and a host network that record what the muxer does, and
 * a guest driver that talks to the device through the real virtio-mmio transport and queues.
 */
import { EventEmitter } from 'node:events';
import type { Timers } from '../../../ratelimit/clock';
import { FakeClock } from '../../../ratelimit/fake-clock';
import { MmioTransport } from '../mmio-transport';
import { MockMmioDriver } from '../testing/mock-mmio-driver';
import { MockQueue } from '../testing/mock-queue';
import { RecordingLog, REGION_A, REGION_B, REGION_C, SpyLine, testMemory } from '../testing/harness';
import { VirtioVsock } from './device';
import type { HostListener, HostNet, HostStream } from './host-net';
import { decodeHeader, encodeHeader, HEADER_SIZE, HOST_CID, Op, PacketHeader, TYPE_STREAM } from './packet';

export class FakeStream extends EventEmitter implements HostStream {
  written: Buffer[] = [];
  private unflushed: Array<() => void> = [];
  /** Flush writes at once (as if the kernel always had room), or only on flush(). */
  autoFlush = true;
  paused = false;
  ended = false;
  destroyed = false;

  write(data: Uint8Array, done?: (err?: Error | null) => void): boolean {
    if (this.destroyed) return false;
    this.written.push(Buffer.from(data));
    const cb = () => done?.(null);
    if (this.autoFlush) cb(); else this.unflushed.push(cb);
    return true;
  }
  flush(): void { for (const cb of this.unflushed.splice(0)) cb(); }
  end(): void { this.ended = true; }
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.emit('close', false);
  }
  pause(): void { this.paused = true; }
  resume(): void { this.paused = false; }
  get text(): string { return Buffer.concat(this.written).toString('latin1'); }
  /** The host program sends bytes. */
  send(data: string | Buffer): void { this.emit('data', Buffer.from(data)); }
}

export class FakeNet implements HostNet {
  listening: string | undefined;
  private onConnection: ((s: HostStream) => void) | undefined;
  /** Outgoing connections (guest-initiated), by path. */
  connects: Array<{ path: string; stream: FakeStream }> = [];
  closed = false;

  listen(path: string, onConnection: (s: HostStream) => void): HostListener {
    this.listening = path;
    this.onConnection = onConnection;
    return { close: () => { this.closed = true; } };
  }
  connect(path: string): HostStream {
    const stream = new FakeStream();
    this.connects.push({ path, stream });
    return stream;
  }
  /** A host program connects to uds_path. */
  accept(): FakeStream {
    const s = new FakeStream();
    this.onConnection!(s);
    return s;
  }
}

export const GUEST_CID = 3;
const RX_BUF = 4096;
const TX_BUF = 4096;

export interface GuestPacket {
  header: PacketHeader;
  payload: Buffer;
}

/** A guest driver: 16 rx buffers of 4 KiB (as Linux posts them), a tx queue, an event queue. */
export class VsockGuest {
  readonly memory = testMemory();
  readonly log = new RecordingLog();
  readonly host = new RecordingLog();
  readonly net: FakeNet;
  readonly clock = new FakeClock();
  readonly line = new SpyLine();
  readonly device: VirtioVsock;
  readonly driver: MockMmioDriver;
  readonly transport: MmioTransport;
  readonly rx = new MockQueue(this.memory, REGION_A, 16);
  readonly tx = new MockQueue(this.memory, REGION_A + 0x2000, 16);
  readonly ev = new MockQueue(this.memory, REGION_A + 0x4000, 16);
  private rxSeen = 0;
  private txSlot = 0;
  private rxAddr = new Map<number, number>();
  private rxPosted = 0;

  /** `realNet`/`udsPath`: real Unix sockets instead of the fake (then `net` is unused). */
  constructor(opts: { maxConnections?: number; rxBuffers?: number; realNet?: HostNet; udsPath?: string; timers?: Timers } = {}) {
    this.net = new FakeNet();
    this.device = new VirtioVsock({
      guestCid: GUEST_CID, udsPath: opts.udsPath ?? '/run/v.sock', net: opts.realNet ?? this.net, log: this.log, host: this.host,
      timers: opts.timers ?? this.clock, maxConnections: opts.maxConnections,
    });
    this.device.listen();
    this.transport = new MmioTransport(this.device, this.memory, this.line, { name: 'virtio-vsock', log: this.log });
    this.driver = new MockMmioDriver(this.transport);
    this.driver.init([this.rx, this.tx, this.ev]);
    this.postRx(opts.rxBuffers ?? 16);
  }

  /** Makes `n` rx buffers available (16 at most are outstanding: REGION_B holds 16 x 4 KiB). */
  postRx(n: number): void {
    for (let i = 0; i < n; i++) {
      const addr = REGION_B + (this.rxPosted++ % 16) * RX_BUF;
      const head = this.rx.addChain([{ addr, len: RX_BUF, write: true }]);
      this.rxAddr.set(head, addr);
    }
    this.driver.notify(0);
  }

  /** Packets the device put in rx buffers since the last call; their buffers are posted again. */
  received(repost = true): GuestPacket[] {
    const out: GuestPacket[] = [];
    const used = this.rx.usedSince(this.rxSeen);
    this.rxSeen = this.rx.usedIdx;
    for (const u of used) {
      const addr = this.rxAddr.get(u.id)!;
      const header = decodeHeader(this.memory.read(addr, HEADER_SIZE));
      out.push({ header, payload: Buffer.from(this.memory.read(addr + HEADER_SIZE, u.len - HEADER_SIZE)) });
    }
    if (repost && used.length > 0) {
      for (const u of used) {
        const head = this.rx.addChain([{ addr: this.rxAddr.get(u.id)!, len: RX_BUF, write: true }]);
        this.rxAddr.set(head, this.rxAddr.get(u.id)!);
      }
      this.driver.notify(0);
    }
    return out;
  }

  /** The guest sends a packet from its port `src` to host port `dst`. */
  send(op: number, src: number, dst: number, opts: { payload?: Buffer; flags?: number; bufAlloc?: number; fwdCnt?: number; header?: Partial<PacketHeader> } = {}): void {
    const payload = opts.payload ?? Buffer.alloc(0);
    const header: PacketHeader = {
      srcCid: GUEST_CID, dstCid: HOST_CID, srcPort: src, dstPort: dst, len: payload.length, type: TYPE_STREAM, op,
      flags: opts.flags ?? 0, bufAlloc: opts.bufAlloc ?? 256 * 1024, fwdCnt: opts.fwdCnt ?? 0, ...opts.header,
    };
    this.sendRaw(Buffer.concat([encodeHeader(header), payload]));
  }

  sendRaw(bytes: Buffer): void {
    const addr = REGION_C + (this.txSlot++ % 16) * TX_BUF;
    if (bytes.length > TX_BUF) throw new Error('test packet too large');
    this.memory.write(addr, bytes);
    this.tx.addChain([{ addr, len: bytes.length }]);
    this.driver.notify(1);
  }

  /** A host program connects, asks for guest port `port`; returns its stream and the guest's REQUEST. */
  hostConnect(port: number): { stream: FakeStream; request: GuestPacket } {
    const stream = this.net.accept();
    stream.send(`CONNECT ${port}\n`);
    const request = this.received().find((p) => p.header.op === Op.REQUEST && p.header.dstPort === port)!;
    return { stream, request };
  }
}
