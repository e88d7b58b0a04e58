/**
 * Frames as a guest would send them, and a reader for what MMDS sends back, written apart from
 * the stack's own packet code so a shared mistake cannot hide in both.
 */
export const GUEST_MAC = Uint8Array.of(0x06, 0x00, 0xc0, 0xa8, 0x00, 0x02);
export const GUEST_IP = '192.168.0.2';
export const BROADCAST = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;

export function ip(text: string): number[] {
  return text.split('.').map(Number);
}

function checksum(bytes: number[]): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i] << 8) + (bytes[i + 1] ?? 0);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}

const u16 = (v: number): number[] => [(v >> 8) & 0xff, v & 0xff];
const u32 = (v: number): number[] => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];

export function arpRequest(targetIp: string, opts: { senderMac?: Uint8Array; senderIp?: string } = {}): Uint8Array {
  const mac = [...(opts.senderMac ?? GUEST_MAC)];
  return Uint8Array.from([
    ...BROADCAST, ...mac, 0x08, 0x06,
    0, 1, 0x08, 0x00, 6, 4, 0, 1, ...mac, ...ip(opts.senderIp ?? GUEST_IP), 0, 0, 0, 0, 0, 0, ...ip(targetIp),
  ]);
}

export interface TcpSpec {
  dstIp: string;
  srcIp?: string;
  srcPort: number;
  dstPort?: number;
  seq: number;
  ack?: number;
  flags: number;
  window?: number;
  mss?: number;
  payload?: Uint8Array | string;
  dstMac?: Uint8Array;
}

/** An Ethernet/IPv4/TCP frame with correct checksums (tests corrupt them on purpose). */
export function tcpFrame(spec: TcpSpec): Uint8Array {
  const payload = typeof spec.payload === 'string' ? [...Buffer.from(spec.payload)] : [...(spec.payload ?? [])];
  const options = spec.mss !== undefined ? [2, 4, ...u16(spec.mss)] : [];
  const src = ip(spec.srcIp ?? GUEST_IP);
  const dst = ip(spec.dstIp);
  const tcp = [
    ...u16(spec.srcPort), ...u16(spec.dstPort ?? 80), ...u32(spec.seq >>> 0), ...u32((spec.ack ?? 0) >>> 0),
    ((20 + options.length) / 4) << 4, spec.flags, ...u16(spec.window ?? 65535), 0, 0, 0, 0, ...options, ...payload,
  ];
  const pseudo = [...src, ...dst, 0, 6, ...u16(tcp.length)];
  const tcpSum = checksum([...pseudo, ...tcp]);
  tcp[16] = tcpSum >> 8;
  tcp[17] = tcpSum & 0xff;
  const header = [0x45, 0, ...u16(20 + tcp.length), 0, 1, 0x40, 0, 64, 6, 0, 0, ...src, ...dst];
  const ipSum = checksum(header);
  header[10] = ipSum >> 8;
  header[11] = ipSum & 0xff;
  return Uint8Array.from([...(spec.dstMac ?? Uint8Array.of(0x06, 0x01, 0x23, 0x45, 0x67, 0x01)), ...GUEST_MAC, 0x08, 0x00, ...header, ...tcp]);
}

export interface ParsedFrame {
  dstMac: Uint8Array;
  srcMac: Uint8Array;
  ethertype: number;
  arp?: { op: number; senderMac: Uint8Array; senderIp: string; targetMac: Uint8Array; targetIp: string };
  tcp?: {
    srcIp: string; dstIp: string; srcPort: number; dstPort: number; seq: number; ack: number; flags: number;
    window: number; mss?: number; payload: Buffer; ipChecksumOk: boolean; tcpChecksumOk: boolean;
  };
}

const dotted = (b: Uint8Array, at: number): string => [...b.subarray(at, at + 4)].join('.');

/** Reads a frame MMDS wrote, checking both checksums independently. */
export function parseFrame(frame: Uint8Array): ParsedFrame {
  const d = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const parsed: ParsedFrame = { dstMac: frame.slice(0, 6), srcMac: frame.slice(6, 12), ethertype: d.getUint16(12) };
  if (parsed.ethertype === 0x0806) {
    parsed.arp = {
      op: d.getUint16(20), senderMac: frame.slice(22, 28), senderIp: dotted(frame, 28), targetMac: frame.slice(32, 38), targetIp: dotted(frame, 38),
    };
  } else if (parsed.ethertype === 0x0800) {
    const ihl = (frame[14] & 15) * 4;
    const total = d.getUint16(16);
    const t = 14 + ihl;
    const tcpBytes = [...frame.subarray(t, 14 + total)];
    const offset = (frame[t + 12] >> 4) * 4;
    const pseudo = [...frame.subarray(26, 34), 0, 6, ...u16(tcpBytes.length)];
    parsed.tcp = {
      srcIp: dotted(frame, 26), dstIp: dotted(frame, 30), srcPort: d.getUint16(t), dstPort: d.getUint16(t + 2),
      seq: d.getUint32(t + 4), ack: d.getUint32(t + 8), flags: frame[t + 13], window: d.getUint16(t + 14),
      mss: offset >= 24 && frame[t + 20] === 2 ? d.getUint16(t + 22) : undefined,
      payload: Buffer.from(frame.subarray(t + offset, 14 + total)),
      ipChecksumOk: checksum([...frame.subarray(14, 14 + ihl)]) === 0,
      tcpChecksumOk: checksum([...pseudo, ...tcpBytes]) === 0,
    };
  }
  return parsed;
}
