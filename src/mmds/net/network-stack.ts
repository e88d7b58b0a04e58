/**
 * The small network stack a network device hands the guest's frames to. It answers ARP for the
 * MMDS address and serves HTTP over TCP port 80 there; everything else is left to the device
 * (it goes to the TAP). Frames start at the Ethernet header (no virtio-net header). Hostile
 * frames are dropped and counted, never thrown on.
 */
import * as crypto from 'node:crypto';
import { type Clock, monotonicClock } from '../../ratelimit/clock';
import { MmdsMetrics } from '../metrics';
import { DEFAULT_MMDS_IPV4_ADDRESS, MMDS_MAC, parseIpv4 } from '../options';
import {
  type ArpRequest, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETH_HEADER, IPV4_HEADER, IP_PROTOCOL_TCP, TCP_ACK, TCP_FIN, TCP_HEADER,
  TCP_RST, TCP_SYN, type TcpSegment, ethertype, ipv4Destination, readArpRequest, readIpv4, readTcp, tcpFrameLength,
  writeArpReply, writeTcpFrame,
} from './packets';
import { LOCAL_MSS, type RequestResponder, TcpConnection } from './tcp-connection';

export const MMDS_TCP_PORT = 80;
/** Firecracker's bounds: connections served at once, and resets queued for unknown peers. */
export const DEFAULT_MAX_CONNECTIONS = 30;
export const DEFAULT_MAX_PENDING_RESETS = 100;
/** A connection silent this long may be replaced by a new one when the table is full. */
export const EVICTION_THRESHOLD_MS = 10_000;
/** ARP replies waiting for an RX buffer; a flood of requests beyond this is dropped. */
export const MAX_PENDING_ARP_REPLIES = 16;
const FRAME_HEADERS = ETH_HEADER + IPV4_HEADER + TCP_HEADER;

export interface MmdsNetworkStackOptions {
  /** Answers one HTTP request head with response bytes (MmdsGuestHandler.respondToBytes). */
  respond: RequestResponder;
  ipv4Address?: string;
  mac?: Uint8Array;
  clock?: Clock;
  metrics?: MmdsMetrics;
  maxConnections?: number;
  maxPendingResets?: number;
  /** Initial sequence numbers; random by default so a guest cannot predict them. */
  initialSequence?: () => number;
}

export interface DetourOptions {
  checksumPartial?: boolean;
}

interface Peer {
  mac: Uint8Array;
  ip: number;
}

interface Endpoint extends Peer {
  connection: TcpConnection;
}

interface PendingReset extends Peer {
  segment: TcpSegment;
}

export class MmdsNetworkStack {
  readonly metrics: MmdsMetrics;
  readonly ipv4: number;
  readonly mac: Uint8Array;
  private readonly respond: RequestResponder;
  private readonly clock: Clock;
  private readonly maxConnections: number;
  private readonly maxPendingResets: number;
  private readonly initialSequence: () => number;
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly arpReplies: ArpRequest[] = [];
  private readonly resets: PendingReset[] = [];
  private ipId = 0;

  constructor(options: MmdsNetworkStackOptions) {
    this.respond = options.respond;
    this.ipv4 = parseIpv4(options.ipv4Address ?? DEFAULT_MMDS_IPV4_ADDRESS);
    this.mac = Uint8Array.from(options.mac ?? MMDS_MAC);
    this.clock = options.clock ?? monotonicClock;
    this.metrics = options.metrics ?? new MmdsMetrics();
    this.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.maxPendingResets = options.maxPendingResets ?? DEFAULT_MAX_PENDING_RESETS;
    this.initialSequence = options.initialSequence ?? (() => crypto.randomBytes(4).readUInt32BE());
  }

  /** Connections currently open. */
  get connectionCount(): number {
    return this.endpoints.size;
  }

  /**
   * Looks at a frame the guest sent. True when it was for MMDS and is consumed (answered or
   * dropped); false when the device should send it on to the TAP. `checksumPartial`: the frame's
   * virtio-net header had VIRTIO_NET_HDR_F_NEEDS_CSUM (the guest offloaded its TCP checksum, so
   * the field holds only the pseudo-header sum and cannot be verified).
   */
  detour(frame: Uint8Array, options: DetourOptions = {}): boolean {
    this.metrics.rx_count++;
    const type = ethertype(frame);
    if (type === undefined) {
      this.metrics.rx_bad_eth++;
      return false;
    }
    if (type === ETHERTYPE_ARP) {
      const request = readArpRequest(frame);
      if (!request || request.targetIp !== this.ipv4) return false;
      this.metrics.rx_accepted++;
      if (this.arpReplies.length < MAX_PENDING_ARP_REPLIES) this.arpReplies.push(request);
      return true;
    }
    if (type !== ETHERTYPE_IPV4 || ipv4Destination(frame) !== this.ipv4) return false;
    // Addressed to MMDS: nothing else owns this address, so the frame never goes to the TAP.
    this.metrics.rx_accepted++;
    const packet = readIpv4(frame);
    const segment = packet && packet.protocol === IP_PROTOCOL_TCP ? readTcp(packet, options.checksumPartial) : undefined;
    if (!packet || !segment || segment.dstPort !== MMDS_TCP_PORT) {
      this.metrics.rx_accepted_err++;
      return true;
    }
    try {
      this.receive({ mac: frame.slice(6, 12), ip: packet.srcIp }, segment);
    } catch {
      // a bug of ours must cost the guest a connection, not the VMM its life
      this.metrics.rx_accepted_err++;
      const key = `${packet.srcIp}:${segment.srcPort}`;
      if (this.endpoints.delete(key)) this.metrics.connections_destroyed++;
    }
    return true;
  }

  private receive(peer: Peer, segment: TcpSegment): void {
    const now = this.nowMs();
    const key = `${peer.ip}:${segment.srcPort}`;
    const endpoint = this.endpoints.get(key);
    if (endpoint) {
      if (endpoint.connection.receive(segment, now).unusual) this.metrics.rx_accepted_unusual++;
      this.reap(key, endpoint);
      return;
    }
    if ((segment.flags & (TCP_SYN | TCP_ACK | TCP_RST)) === TCP_SYN) {
      if (this.endpoints.size >= this.maxConnections && !this.evictOne(now)) {
        this.queueReset(peer, segment);
        return;
      }
      this.endpoints.set(key, { ...peer, connection: new TcpConnection(segment, this.initialSequence(), now, this.respond) });
      this.metrics.connections_created++;
      return;
    }
    this.metrics.rx_accepted_unusual++;
    if (!(segment.flags & TCP_RST)) this.queueReset(peer, segment);
  }

  /** Frees a slot by dropping a connection nobody has spoken on for a while. */
  private evictOne(now: number): boolean {
    for (const [key, endpoint] of this.endpoints) {
      if (now - endpoint.connection.lastReceivedMs > EVICTION_THRESHOLD_MS) {
        this.endpoints.delete(key);
        this.metrics.connections_destroyed++;
        return true;
      }
    }
    return false;
  }

  /** A reset for a segment that belongs to no connection (RFC 9293 3.10.7.1). */
  private queueReset(peer: Peer, segment: TcpSegment): void {
    if (this.resets.length >= this.maxPendingResets) return;
    const length = segment.payload.length + (segment.flags & TCP_SYN ? 1 : 0) + (segment.flags & TCP_FIN ? 1 : 0);
    const reply: TcpSegment = segment.flags & TCP_ACK
      ? { srcPort: segment.dstPort, dstPort: segment.srcPort, seq: segment.ack, ack: 0, flags: TCP_RST, window: 0, payload: new Uint8Array(0) }
      : { srcPort: segment.dstPort, dstPort: segment.srcPort, seq: 0, ack: (segment.seq + length) >>> 0, flags: TCP_RST | TCP_ACK, window: 0, payload: new Uint8Array(0) };
    this.resets.push({ ...peer, segment: reply });
  }

  private reap(key: string, endpoint: Endpoint): void {
    if (!endpoint.connection.isDone()) return;
    this.endpoints.delete(key);
    this.metrics.connections_destroyed++;
  }

  /** True when MMDS has a frame for the guest (an RX buffer is worth taking). */
  hasPending(): boolean {
    if (this.arpReplies.length > 0 || this.resets.length > 0) return true;
    const now = this.nowMs();
    for (const endpoint of this.endpoints.values()) if (endpoint.connection.hasSegment(now)) return true;
    return false;
  }

  /**
   * When the earliest retransmission falls due (monotonic ms on the stack's clock), so the device
   * can arm a timer and look again; undefined when nothing waits on time.
   */
  nextDeadlineMs(): number | undefined {
    let earliest: number | undefined;
    for (const endpoint of this.endpoints.values()) {
      const due = endpoint.connection.nextDeadlineMs();
      if (due !== undefined && (earliest === undefined || due < earliest)) earliest = due;
    }
    return earliest;
  }

  /**
   * Writes the next frame for the guest into `out` and returns its length, or 0 when there is
   * none or `out` cannot hold even the headers (the frame then stays queued). Data segments are
   * cut to fit `out`, so a small buffer gets a smaller segment rather than nothing.
   */
  writeNextFrame(out: Uint8Array): number {
    this.metrics.tx_count++;
    const length = this.writeFrame(out);
    if (length > 0) {
      this.metrics.tx_frames++;
      this.metrics.tx_bytes += length;
    }
    return length;
  }

  private writeFrame(out: Uint8Array): number {
    const arp = this.arpReplies[0];
    if (arp) {
      if (out.length < ETH_HEADER + 28) return this.tooSmall();
      this.arpReplies.shift();
      return writeArpReply(out, arp, this.mac, this.ipv4);
    }
    if (out.length < FRAME_HEADERS + 4) return this.hasPending() ? this.tooSmall() : 0;
    const reset = this.resets.shift();
    if (reset) return this.writeSegment(out, reset, reset.segment);
    const now = this.nowMs();
    const maxPayload = Math.min(out.length - FRAME_HEADERS, LOCAL_MSS);
    for (const [key, endpoint] of this.endpoints) {
      const segment = endpoint.connection.nextSegment(now, maxPayload);
      if (!segment) continue;
      // round robin: the connection just served goes to the back of the line
      this.endpoints.delete(key);
      this.endpoints.set(key, endpoint);
      const length = this.writeSegment(out, endpoint, segment);
      this.reap(key, endpoint);
      return length;
    }
    return 0;
  }

  private tooSmall(): number {
    this.metrics.tx_errors++;
    return 0;
  }

  private writeSegment(out: Uint8Array, peer: Peer, segment: TcpSegment): number {
    if (tcpFrameLength(segment) > out.length) return this.tooSmall();
    this.ipId = (this.ipId + 1) & 0xffff;
    return writeTcpFrame(out, { dstMac: peer.mac, srcMac: this.mac, srcIp: this.ipv4, dstIp: peer.ip, ipId: this.ipId, segment });
  }

  private nowMs(): number {
    return Number(this.clock.nowNs() / 1_000_000n);
  }
}
