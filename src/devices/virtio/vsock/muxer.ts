/**
 * Firecracker's hybrid vsock backend: guest vsock streams proxied to host Unix sockets.
 * - Host-initiated: a program connects to `uds_path` and sends `CONNECT <port>\n`; we send the
 *   guest a REQUEST from a host port allocated round-robin from 2^30, and on the guest's
 *   RESPONSE answer `OK <host_port>\n`; then bytes flow both ways.
 * - Guest-initiated: a guest connecting to CID 2 port P reaches the listener on `<uds_path>_P`.
 * The muxer owns the connections (at most 1023), routes guest packets to them by port pair,
 * and hands the device the next packet for the guest, connections taking turns.
 */
import type { Timers } from '../../../ratelimit/clock';
import type { LogSink } from '../guest-log';
import { parseConnectLine } from './connect-line';
import { connKey, Connection, ConnectionHost } from './connection';
import type { HostListener, HostNet, HostStream } from './host-net';
import type { VsockMetrics } from './metrics';
import { HOST_CID, Op, OP_NAMES, Packet, PacketHeader, TYPE_STREAM } from './packet';

export const MAX_CONNECTIONS = 1023;
/** Firecracker's first host-side port for host-initiated connections; they wrap below 2^31. */
export const FIRST_LOCAL_PORT = 2 ** 30;
const LOCAL_PORT_END = 2 ** 31;
/** A guest that does not answer a host-initiated REQUEST within this is given up on (RST). */
export const REQUEST_TIMEOUT_MS = 2000;
/**
 * How long a connection whose host socket closed may wait for a guest that takes none of its
 * last bytes and sends no RST before it is reset (Firecracker's shutdown timeout is the same
 * 2 s): a guest that never reads cannot keep a connection slot once the host is gone.
 */
export const HOST_GONE_TIMEOUT_MS = 2000;
/** RSTs for packets naming no connection wait here; beyond this many they are dropped. */
const MAX_STRAY_RESETS = 256;

export interface VsockMuxerOptions {
  guestCid: number;
  udsPath: string;
  net: HostNet;
  /** Guest-triggered messages (rate-limited) and host-side ones. */
  log: LogSink;
  host: LogSink;
  timers: Timers;
  metrics: VsockMetrics;
  /** Called when there is something new to send to the guest. */
  wake: () => void;
  maxConnections?: number;
}

export class VsockMuxer implements ConnectionHost {
  readonly guestCid: number;
  private readonly conns = new Map<string, Connection>();
  /** Connections with (possibly) something to send, in turn order. */
  private readonly ready = new Set<Connection>();
  /** Host connections that have not sent their CONNECT line yet. */
  private readonly handshakes = new Set<HostStream>();
  private readonly strays: PacketHeader[] = [];
  private readonly localPorts = new Set<number>();
  private readonly timers = new Map<Connection, unknown>();
  private nextLocalPort = FIRST_LOCAL_PORT;
  private listener: HostListener | undefined;
  private readonly maxConnections: number;

  constructor(private readonly opts: VsockMuxerOptions) {
    this.guestCid = opts.guestCid;
    this.maxConnections = opts.maxConnections ?? MAX_CONNECTIONS;
  }

  get counters() { return this.opts.metrics; }
  get connectionCount(): number { return this.conns.size; }

  /** Starts listening on uds_path. */
  listen(): void {
    this.listener = this.opts.net.listen(this.opts.udsPath, (s) => this.onHostConnection(s), (err) => {
      this.opts.metrics.muxerEventFails++;
      this.opts.host.error(`vsock: the Unix socket ${this.opts.udsPath} failed: ${err.message}`);
    });
  }

  /** A packet the guest put on the tx queue. */
  handleGuestPacket(h: PacketHeader, payload: Buffer): void {
    if (h.srcCid !== this.guestCid || h.dstCid !== HOST_CID) {
      this.opts.log.warn(`vsock: dropping a ${OP_NAMES[h.op] ?? `op ${h.op}`} packet from CID ${h.srcCid} to CID ${h.dstCid}: the guest is CID ${this.guestCid} and can only reach the host (CID 2).`);
      return;
    }
    if (h.type !== TYPE_STREAM) return this.strayReset(h);
    const conn = this.conns.get(connKey(h.dstPort, h.srcPort));
    if (conn !== undefined) return conn.onGuestPacket(h, payload);
    if (h.op === Op.REQUEST) return this.guestConnect(h);
    if (h.op !== Op.RST) this.strayReset(h);
  }

  hasOutput(): boolean {
    if (this.strays.length > 0) return true;
    for (const c of this.ready) {
      if (c.hasOutput()) return true;
      this.ready.delete(c);
    }
    return false;
  }

  /** The next packet for the guest (payload at most `maxPayload` bytes, which must be > 0). */
  nextPacket(maxPayload: number): Packet | undefined {
    const stray = this.strays.shift();
    if (stray !== undefined) {
      const header: PacketHeader = {
        srcCid: HOST_CID, dstCid: this.guestCid, srcPort: stray.dstPort, dstPort: stray.srcPort, len: 0,
        type: TYPE_STREAM, op: Op.RST, flags: 0, bufAlloc: 0, fwdCnt: 0,
      };
      return { header, payload: Buffer.alloc(0) };
    }
    for (const c of this.ready) {
      this.ready.delete(c);
      const p = c.hasOutput() ? c.nextPacket(maxPayload) : undefined;
      if (p !== undefined) {
        if (c.hasOutput()) this.ready.add(c); // to the back: connections take turns
        return p;
      }
    }
    return undefined;
  }

  /** The driver reset the device: every connection ends, host sockets are closed. */
  reset(): void {
    for (const c of [...this.conns.values()]) c.close(true);
    this.strays.length = 0;
    this.ready.clear();
  }

  dispose(): void {
    this.reset();
    for (const s of this.handshakes) s.destroy();
    this.handshakes.clear();
    this.listener?.close();
    this.listener = undefined;
  }

  // ConnectionHost
  schedule(conn: Connection): void {
    const first = !this.ready.has(conn);
    this.ready.add(conn);
    if (first) this.opts.wake();
  }

  removed(conn: Connection, killed: boolean): void {
    if (this.conns.get(conn.key) === conn) this.conns.delete(conn.key);
    this.ready.delete(conn);
    this.localPorts.delete(conn.localPort);
    const t = this.timers.get(conn);
    if (t !== undefined) this.opts.timers.clearTimeout(t);
    this.timers.delete(conn);
    this.opts.metrics.connsRemoved++;
    if (killed) this.opts.metrics.connsKilled++;
  }

  hostGone(conn: Connection): void {
    if (this.timers.has(conn)) return;
    let mark = conn.deliveredMark;
    const arm = () => this.timers.set(conn, this.opts.timers.setTimeout(() => {
      this.timers.delete(conn);
      if (conn.state === 'closed') return;
      const now = conn.deliveredMark;
      if (now !== mark) {
        mark = now;
        arm();
        return;
      }
      conn.reset();
    }, HOST_GONE_TIMEOUT_MS));
    arm();
  }

  established(conn: Connection): void {
    const t = this.timers.get(conn);
    if (t !== undefined) this.opts.timers.clearTimeout(t);
    this.timers.delete(conn);
    conn.stream.write(Buffer.from(`OK ${conn.localPort}\n`, 'latin1'));
  }

  private onHostConnection(stream: HostStream): void {
    if (this.conns.size + this.handshakes.size >= this.maxConnections) {
      this.opts.host.warn(`vsock: refusing a host connection: ${this.maxConnections} connections are open.`);
      stream.destroy();
      return;
    }
    this.handshakes.add(stream);
    let got = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      const line = parseConnectLine(got);
      if (line.kind === 'incomplete') return;
      stream.off('data', onData);
      stream.off('close', onClose);
      stream.off('error', onClose);
      this.handshakes.delete(stream);
      if (line.kind === 'invalid') {
        this.opts.host.warn(`vsock: closing a host connection on ${this.opts.udsPath}: ${line.reason}.`);
        stream.destroy();
        return;
      }
      this.hostConnect(stream, line.port, line.rest);
    };
    const onClose = () => {
      this.handshakes.delete(stream);
      stream.destroy();
    };
    stream.on('data', onData);
    stream.on('close', onClose);
    stream.on('error', onClose);
  }

  private hostConnect(stream: HostStream, guestPort: number, early: Buffer): void {
    const localPort = this.allocateLocalPort();
    const conn = new Connection(localPort, guestPort, stream, 'local-init', this);
    this.add(conn);
    this.localPorts.add(localPort);
    conn.pushEarlyData(Buffer.from(early));
    this.timers.set(conn, this.opts.timers.setTimeout(() => {
      this.timers.delete(conn);
      if (conn.state === 'local-init') conn.reset();
    }, REQUEST_TIMEOUT_MS));
  }

  private guestConnect(h: PacketHeader): void {
    if (this.conns.size >= this.maxConnections) return this.strayReset(h);
    const stream = this.opts.net.connect(`${this.opts.udsPath}_${h.dstPort}`);
    const conn = new Connection(h.dstPort, h.srcPort, stream, 'peer-init', this);
    conn.noteCredit(h);
    stream.once('connect', () => conn.hostConnected());
    this.add(conn);
  }

  private add(conn: Connection): void {
    this.conns.set(conn.key, conn);
    this.opts.metrics.connsAdded++;
  }

  private allocateLocalPort(): number {
    for (;;) {
      const port = this.nextLocalPort;
      this.nextLocalPort = port + 1 >= LOCAL_PORT_END ? FIRST_LOCAL_PORT : port + 1;
      if (!this.localPorts.has(port)) return port;
    }
  }

  private strayReset(h: PacketHeader): void {
    if (this.strays.length >= MAX_STRAY_RESETS) return;
    this.strays.push(h);
    this.opts.wake();
  }
}
