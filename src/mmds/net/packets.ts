/**
 * Reading and writing the headers MMDS handles: Ethernet II, ARP (Ethernet/IPv4), IPv4 and TCP.
 * Readers check every length against the bytes actually present and return undefined (never
 * throw) for anything short, inconsistent or with a bad checksum.
 */
import { ipv4HeaderChecksum, onesComplementSum, tcpChecksum } from './checksum';

export const ETH_HEADER = 14;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ARP_PACKET = 28;
export const IPV4_HEADER = 20;
export const TCP_HEADER = 20;
export const IP_PROTOCOL_TCP = 6;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

export interface ArpRequest {
  senderMac: Uint8Array;
  senderIp: number;
  targetIp: number;
}

export interface Ipv4Packet {
  srcIp: number;
  dstIp: number;
  protocol: number;
  /** The payload, bounded by the header's total length (Ethernet padding left out). */
  payload: Uint8Array;
}

export interface TcpSegment {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** From the MSS option, when the segment carries one. */
  mss?: number;
  payload: Uint8Array;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function ethertype(frame: Uint8Array): number | undefined {
  return frame.length < ETH_HEADER ? undefined : (frame[12] << 8) | frame[13];
}

/** An ARP request (Ethernet hardware, IPv4 protocol); undefined for replies and other kinds. */
export function readArpRequest(frame: Uint8Array): ArpRequest | undefined {
  if (frame.length < ETH_HEADER + ARP_PACKET) return undefined;
  const v = view(frame);
  const o = ETH_HEADER;
  if (v.getUint16(o) !== 1 || v.getUint16(o + 2) !== ETHERTYPE_IPV4 || frame[o + 4] !== 6 || frame[o + 5] !== 4) return undefined;
  if (v.getUint16(o + 6) !== 1) return undefined;
  return { senderMac: frame.slice(o + 8, o + 14), senderIp: v.getUint32(o + 14), targetIp: v.getUint32(o + 24) };
}

/** The destination address of an IPv4 frame, if the frame is long enough to hold one. */
export function ipv4Destination(frame: Uint8Array): number | undefined {
  return frame.length < ETH_HEADER + IPV4_HEADER ? undefined : view(frame).getUint32(ETH_HEADER + 16);
}

/** A whole, unfragmented IPv4 packet with a valid header checksum. */
export function readIpv4(frame: Uint8Array): Ipv4Packet | undefined {
  if (frame.length < ETH_HEADER + IPV4_HEADER) return undefined;
  const v = view(frame);
  const o = ETH_HEADER;
  if (frame[o] >> 4 !== 4) return undefined;
  const headerLength = (frame[o] & 0x0f) * 4;
  const totalLength = v.getUint16(o + 2);
  if (headerLength < IPV4_HEADER || totalLength < headerLength || o + totalLength > frame.length) return undefined;
  if (onesComplementSum(frame, o, o + headerLength) !== 0xffff) return undefined;
  const fragment = v.getUint16(o + 6);
  if ((fragment & 0x2000) !== 0 || (fragment & 0x1fff) !== 0) return undefined; // MF set or an offset: a fragment
  return {
    srcIp: v.getUint32(o + 12),
    dstIp: v.getUint32(o + 16),
    protocol: frame[o + 9],
    payload: frame.subarray(o + headerLength, o + totalLength),
  };
}

/**
 * A TCP segment whose checksum verifies against the IPv4 pseudo-header. With `checksumPartial`
 * (checksum offload: the guest left only the pseudo-header sum for the device to finish) the
 * checksum is not checked; everything else still is.
 */
export function readTcp(packet: Ipv4Packet, checksumPartial = false): TcpSegment | undefined {
  const bytes = packet.payload;
  if (bytes.length < TCP_HEADER) return undefined;
  const v = view(bytes);
  const headerLength = (bytes[12] >> 4) * 4;
  if (headerLength < TCP_HEADER || headerLength > bytes.length) return undefined;
  if (!checksumPartial && tcpChecksum(bytes, 0, bytes.length, packet.srcIp, packet.dstIp) !== 0) return undefined;
  return {
    srcPort: v.getUint16(0),
    dstPort: v.getUint16(2),
    seq: v.getUint32(4),
    ack: v.getUint32(8),
    flags: bytes[13] & 0x3f,
    window: v.getUint16(14),
    mss: readMssOption(bytes, headerLength),
    payload: bytes.subarray(headerLength),
  };
}

/** The MSS option if present and well formed; malformed options end the scan, not the segment. */
function readMssOption(bytes: Uint8Array, headerLength: number): number | undefined {
  let i = TCP_HEADER;
  while (i < headerLength) {
    const kind = bytes[i];
    if (kind === 0) return undefined; // end of options
    if (kind === 1) {
      i++;
      continue;
    }
    if (i + 1 >= headerLength) return undefined;
    const length = bytes[i + 1];
    if (length < 2 || i + length > headerLength) return undefined;
    if (kind === 2 && length === 4) return (bytes[i + 2] << 8) | bytes[i + 3];
    i += length;
  }
  return undefined;
}

function writeEthernet(out: Uint8Array, dst: Uint8Array, src: Uint8Array, type: number): void {
  out.set(dst, 0);
  out.set(src, 6);
  out[12] = type >> 8;
  out[13] = type & 0xff;
}

/** Writes an ARP reply to `request` saying `ip` is at `mac`; returns its length. */
export function writeArpReply(out: Uint8Array, request: ArpRequest, mac: Uint8Array, ip: number): number {
  writeEthernet(out, request.senderMac, mac, ETHERTYPE_ARP);
  const v = view(out);
  const o = ETH_HEADER;
  v.setUint16(o, 1);
  v.setUint16(o + 2, ETHERTYPE_IPV4);
  out[o + 4] = 6;
  out[o + 5] = 4;
  v.setUint16(o + 6, 2);
  out.set(mac, o + 8);
  v.setUint32(o + 14, ip);
  out.set(request.senderMac, o + 18);
  v.setUint32(o + 24, request.senderIp);
  return ETH_HEADER + ARP_PACKET;
}

export interface TcpFrameSpec {
  dstMac: Uint8Array;
  srcMac: Uint8Array;
  srcIp: number;
  dstIp: number;
  ipId: number;
  segment: TcpSegment;
}

/** Bytes a TCP frame needs for `segment` (headers, MSS option, payload). */
export function tcpFrameLength(segment: TcpSegment): number {
  return ETH_HEADER + IPV4_HEADER + TCP_HEADER + (segment.mss !== undefined ? 4 : 0) + segment.payload.length;
}

/** Writes an Ethernet/IPv4/TCP frame with both checksums; `out` must hold tcpFrameLength bytes. */
export function writeTcpFrame(out: Uint8Array, spec: TcpFrameSpec): number {
  const { segment } = spec;
  const tcpHeader = TCP_HEADER + (segment.mss !== undefined ? 4 : 0);
  const tcpLength = tcpHeader + segment.payload.length;
  writeEthernet(out, spec.dstMac, spec.srcMac, ETHERTYPE_IPV4);
  const v = view(out);
  const ip = ETH_HEADER;
  out[ip] = 0x45;
  out[ip + 1] = 0;
  v.setUint16(ip + 2, IPV4_HEADER + tcpLength);
  v.setUint16(ip + 4, spec.ipId & 0xffff);
  v.setUint16(ip + 6, 0x4000); // don't fragment
  out[ip + 8] = 64;
  out[ip + 9] = IP_PROTOCOL_TCP;
  v.setUint16(ip + 10, 0);
  v.setUint32(ip + 12, spec.srcIp);
  v.setUint32(ip + 16, spec.dstIp);
  v.setUint16(ip + 10, ipv4HeaderChecksum(out, ip, ip + IPV4_HEADER));
  const t = ip + IPV4_HEADER;
  v.setUint16(t, segment.srcPort);
  v.setUint16(t + 2, segment.dstPort);
  v.setUint32(t + 4, segment.seq >>> 0);
  v.setUint32(t + 8, segment.ack >>> 0);
  out[t + 12] = (tcpHeader / 4) << 4;
  out[t + 13] = segment.flags;
  v.setUint16(t + 14, segment.window);
  v.setUint16(t + 16, 0);
  v.setUint16(t + 18, 0);
  if (segment.mss !== undefined) {
    out[t + 20] = 2;
    out[t + 21] = 4;
    v.setUint16(t + 22, segment.mss);
  }
  out.set(segment.payload, t + tcpHeader);
  v.setUint16(t + 16, tcpChecksum(out, t, t + tcpLength, spec.srcIp, spec.dstIp));
  return ETH_HEADER + IPV4_HEADER + tcpLength;
}
