/**
 * The virtio-vsock packet header (virtio 1.2, 5.10.6: struct virtio_vsock_hdr), little-endian,
 * 44 bytes, followed by `len` payload bytes on the tx queue and in rx buffers.
 */

export const HEADER_SIZE = 44;
/** The host's context ID (spec 5.10.4: CID 2 is the host; 0 and 1 are reserved). */
export const HOST_CID = 2;
/** Only stream sockets (spec 5.10.6: VIRTIO_VSOCK_TYPE_STREAM); seqpacket is a feature we do not offer. */
export const TYPE_STREAM = 1;
/** The most payload one packet carries: Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE. */
export const MAX_PAYLOAD = 64 * 1024;

export const Op = {
  INVALID: 0,
  REQUEST: 1,
  RESPONSE: 2,
  RST: 3,
  SHUTDOWN: 4,
  RW: 5,
  CREDIT_UPDATE: 6,
  CREDIT_REQUEST: 7,
} as const;

/** Flags of a SHUTDOWN packet: the sender will receive (RCV) / send (SEND) no more. */
export const Shutdown = { RCV: 1, SEND: 2, BOTH: 3 } as const;

export const OP_NAMES: Record<number, string> = {
  0: 'INVALID', 1: 'REQUEST', 2: 'RESPONSE', 3: 'RST', 4: 'SHUTDOWN', 5: 'RW', 6: 'CREDIT_UPDATE', 7: 'CREDIT_REQUEST',
};

export interface PacketHeader {
  /** CIDs are u64 on the wire; any value above 2^53 is invalid for us anyway and reads as such. */
  srcCid: number;
  dstCid: number;
  srcPort: number;
  dstPort: number;
  len: number;
  type: number;
  op: number;
  flags: number;
  bufAlloc: number;
  fwdCnt: number;
}

/** A u64 CID as a Number; one that does not fit exactly becomes -1 (never a valid CID). */
function readCid(b: Uint8Array, at: number): number {
  const v = Buffer.from(b.buffer, b.byteOffset, b.byteLength).readBigUInt64LE(at);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(v);
}

export function decodeHeader(b: Uint8Array): PacketHeader {
  if (b.length < HEADER_SIZE) throw new RangeError(`A vsock header is ${HEADER_SIZE} bytes; got ${b.length}.`);
  const v = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return {
    srcCid: readCid(b, 0),
    dstCid: readCid(b, 8),
    srcPort: v.readUInt32LE(16),
    dstPort: v.readUInt32LE(20),
    len: v.readUInt32LE(24),
    type: v.readUInt16LE(28),
    op: v.readUInt16LE(30),
    flags: v.readUInt32LE(32),
    bufAlloc: v.readUInt32LE(36),
    fwdCnt: v.readUInt32LE(40),
  };
}

export function encodeHeader(h: PacketHeader): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  b.writeBigUInt64LE(BigInt(h.srcCid), 0);
  b.writeBigUInt64LE(BigInt(h.dstCid), 8);
  b.writeUInt32LE(h.srcPort >>> 0, 16);
  b.writeUInt32LE(h.dstPort >>> 0, 20);
  b.writeUInt32LE(h.len >>> 0, 24);
  b.writeUInt16LE(h.type, 28);
  b.writeUInt16LE(h.op, 30);
  b.writeUInt32LE(h.flags >>> 0, 32);
  b.writeUInt32LE(h.bufAlloc >>> 0, 36);
  b.writeUInt32LE(h.fwdCnt >>> 0, 40);
  return b;
}

/** A packet for the guest: its header and payload (empty for control packets). */
export interface Packet {
  header: PacketHeader;
  payload: Buffer;
}

/** `a - b` for the wrapping u32 counters of credit accounting (spec 5.10.6.3). */
export function wrapDiff(a: number, b: number): number {
  return (a - b) >>> 0;
}
