/**
 * Turns a descriptor chain into a block request (spec 5.2.6): a 16-byte device-readable header
 * (type u32, reserved u32, sector u64), the data, and one device-writable status byte, which is
 * the last writable byte of the chain. The chain has already been checked to lie in guest RAM
 * (descriptor-chain.ts); this checks what the block device adds: lengths, directions, range.
 */
import type { GuestAddress } from '../../../memory/guest-address';
import type { GuestMemory } from '../../../memory/guest-memory';
import type { DescriptorChain, Segment } from '../descriptor-chain';
import { BlkStatus, BlkStatusCode, ID_BYTES, REQUEST_HEADER_SIZE, RequestType, SECTOR_SHIFT, SECTOR_SIZE } from './constants';

export type BlockRequest =
  /** Read `length` bytes at byte `offset` of the disk into `data` (device-writable). */
  | { kind: 'read'; offset: number; length: number; data: Segment[] }
  /** Write `length` bytes from `data` (device-readable) at byte `offset`. */
  | { kind: 'write'; offset: number; length: number; data: Segment[] }
  | { kind: 'flush' }
  /** Write the serial (up to 20 bytes) into `data`. */
  | { kind: 'get-id'; data: Segment[]; length: number }
  /** A request type we do not implement: it completes with UNSUPP. */
  | { kind: 'unsupported'; type: number };

/** What parsing decided: a request to run, or a status to return at once (and why). */
export type ParseResult =
  | { ok: true; request: BlockRequest }
  | { ok: false; status: BlkStatusCode; why: string };

/** The segments covering `length` bytes from `offset` into `segments` (which must hold them). */
export function sliceSegments(segments: readonly Segment[], offset: number, length: number): Segment[] {
  const out: Segment[] = [];
  let skip = offset;
  let left = length;
  for (const s of segments) {
    if (left === 0) break;
    if (skip >= s.len) {
      skip -= s.len;
      continue;
    }
    const n = Math.min(s.len - skip, left);
    out.push({ addr: (s.addr + skip) as GuestAddress, len: n });
    left -= n;
    skip = 0;
  }
  return out;
}

/**
 * Parses `chain` for a disk of `capacity` sectors. The caller has checked that the chain has at
 * least one writable byte (the status), so every failure here can be reported through it.
 */
export function parseRequest(memory: GuestMemory, chain: DescriptorChain, capacity: bigint): ParseResult {
  if (chain.readableBytes < REQUEST_HEADER_SIZE) {
    return fail(BlkStatus.IOERR, `its header has ${chain.readableBytes} device-readable bytes, not ${REQUEST_HEADER_SIZE}`);
  }
  const header = chain.read(memory, 0, REQUEST_HEADER_SIZE);
  const type = header.readUInt32LE(0);
  const sector = header.readBigUInt64LE(8);
  // The status byte is the last writable byte; anything writable before it is data.
  const writableData = chain.writableBytes - 1;
  const readableData = chain.readableBytes - REQUEST_HEADER_SIZE;

  switch (type) {
    case RequestType.IN:
    case RequestType.OUT: {
      const isRead = type === RequestType.IN;
      const length = isRead ? writableData : readableData;
      // spec 5.2.6.1: data of IN/OUT is a whole number of sectors.
      if (length % SECTOR_SIZE !== 0) return fail(BlkStatus.IOERR, `its data length ${length} is not a multiple of ${SECTOR_SIZE}`);
      const end = sector + BigInt(length >> SECTOR_SHIFT);
      if (end > capacity) {
        return fail(BlkStatus.IOERR, `sectors ${sector}..${end} lie beyond the disk's ${capacity} sectors`);
      }
      const offset = Number(sector) * SECTOR_SIZE; // exact: sector < capacity, which came from a file size
      const data = isRead ? sliceSegments(chain.writable, 0, length) : sliceSegments(chain.readable, REQUEST_HEADER_SIZE, length);
      return { ok: true, request: { kind: isRead ? 'read' : 'write', offset, length, data } };
    }
    case RequestType.FLUSH:
      return { ok: true, request: { kind: 'flush' } };
    case RequestType.GET_ID: {
      const length = Math.min(ID_BYTES, writableData);
      return { ok: true, request: { kind: 'get-id', data: sliceSegments(chain.writable, 0, length), length } };
    }
    default:
      return { ok: true, request: { kind: 'unsupported', type } };
  }
}

/** The 20-byte serial for GET_ID: the drive_id's bytes, cut or NUL-padded to 20. */
export function driveSerial(driveId: string): Buffer {
  const serial = Buffer.alloc(ID_BYTES);
  Buffer.from(driveId, 'utf8').copy(serial, 0, 0, ID_BYTES);
  return serial;
}

/** Bytes of guest data a request moves, for the bandwidth bucket and the metrics. */
export function requestBytes(request: BlockRequest): number {
  return request.kind === 'read' || request.kind === 'write' ? request.length : 0;
}

function fail(status: BlkStatusCode, why: string): ParseResult {
  return { ok: false, status, why };
}
