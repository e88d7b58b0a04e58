import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GuestAddress } from '../../../memory/guest-address';
import { DescriptorChain, Segment } from '../descriptor-chain';
import { testMemory } from '../testing/harness';
import { BlkStatus, RequestType } from './constants';
import { driveSerial, parseRequest, sliceSegments } from './request';

const seg = (addr: number, len: number): Segment => ({ addr: addr as GuestAddress, len });
const sum = (s: Segment[]) => s.reduce((n, x) => n + x.len, 0);

/** A chain over test memory with a header written at 0x100 (optionally split in two descriptors). */
function chain(type: number, sector: bigint, readable: Segment[], writable: Segment[], split = false) {
  const memory = testMemory();
  const h = Buffer.alloc(16);
  h.writeUInt32LE(type, 0);
  h.writeUInt32LE(0xdeadbeef, 4); // reserved (ioprio): ignored
  h.writeBigUInt64LE(sector, 8);
  memory.write(0x100, h);
  const header = split ? [seg(0x100, 8), seg(0x108, 8)] : [seg(0x100, 16)];
  const r = [...header, ...readable];
  return { memory, chain: new DescriptorChain(0, r, writable, sum(r), sum(writable)) };
}

test('a read: header type 0, sector, the data is every writable byte but the last (the status)', () => {
  const { memory, chain: c } = chain(RequestType.IN, 2n, [], [seg(0x1000, 512), seg(0x2000, 512), seg(0x3000, 1)]);
  const r = parseRequest(memory, c, 100n);
  assert.deepEqual(r, { ok: true, request: { kind: 'read', offset: 1024, length: 1024, data: [seg(0x1000, 512), seg(0x2000, 512)] } });
});

test('a write: the data is the readable bytes after the 16-byte header, even when the header is split', () => {
  const { memory, chain: c } = chain(RequestType.OUT, 1n, [seg(0x1000, 512)], [seg(0x3000, 1)], true);
  assert.deepEqual(parseRequest(memory, c, 100n), { ok: true, request: { kind: 'write', offset: 512, length: 512, data: [seg(0x1000, 512)] } });
});

test('data sharing a descriptor with the header or the status byte is sliced out of it', () => {
  const { memory, chain: c } = chain(RequestType.IN, 0n, [], [seg(0x1000, 513)]);
  const r = parseRequest(memory, c, 100n);
  assert.ok(r.ok && r.request.kind === 'read');
  assert.deepEqual(r.request.data, [seg(0x1000, 512)]);
});

test('flush, GET_ID (at most 20 bytes) and unknown types', () => {
  let t = chain(RequestType.FLUSH, 0n, [], [seg(0x3000, 1)]);
  assert.deepEqual(parseRequest(t.memory, t.chain, 1n), { ok: true, request: { kind: 'flush' } });
  t = chain(RequestType.GET_ID, 0n, [], [seg(0x1000, 64), seg(0x3000, 1)]);
  assert.deepEqual(parseRequest(t.memory, t.chain, 1n), { ok: true, request: { kind: 'get-id', data: [seg(0x1000, 20)], length: 20 } });
  t = chain(RequestType.GET_ID, 0n, [], [seg(0x1000, 8), seg(0x3000, 1)]);
  assert.deepEqual(parseRequest(t.memory, t.chain, 1n), { ok: true, request: { kind: 'get-id', data: [seg(0x1000, 8)], length: 8 } });
  for (const type of [RequestType.DISCARD, RequestType.WRITE_ZEROES, RequestType.GET_LIFETIME, RequestType.SECURE_ERASE, 0xffff_ffff]) {
    t = chain(type, 0n, [], [seg(0x3000, 1)]);
    assert.deepEqual(parseRequest(t.memory, t.chain, 1n), { ok: true, request: { kind: 'unsupported', type } });
  }
});

test('range: the last sector is readable, one past it is an I/O error, and a sector near 2^64 does not wrap', () => {
  let t = chain(RequestType.IN, 99n, [], [seg(0x1000, 512), seg(0x3000, 1)]);
  assert.equal(parseRequest(t.memory, t.chain, 100n).ok, true);
  t = chain(RequestType.IN, 99n, [], [seg(0x1000, 1024), seg(0x3000, 1)]);
  const r = parseRequest(t.memory, t.chain, 100n);
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.status, BlkStatus.IOERR);
  assert.match(!r.ok ? r.why : '', /beyond the disk's 100 sectors/);
  t = chain(RequestType.OUT, 0xffff_ffff_ffff_ffffn, [seg(0x1000, 512)], [seg(0x3000, 1)]);
  assert.deepEqual(parseRequest(t.memory, t.chain, 100n).ok, false);
});

test('a data length that is not whole sectors is an I/O error', () => {
  const t = chain(RequestType.IN, 0n, [], [seg(0x1000, 100), seg(0x3000, 1)]);
  const r = parseRequest(t.memory, t.chain, 100n);
  assert.deepEqual(r, { ok: false, status: BlkStatus.IOERR, why: 'its data length 100 is not a multiple of 512' });
});

test('a header shorter than 16 readable bytes, or a writable header, is an I/O error', () => {
  const memory = testMemory();
  const short = new DescriptorChain(0, [seg(0x100, 8)], [seg(0x3000, 1)], 8, 1);
  assert.equal(parseRequest(memory, short, 100n).ok, false);
  const writableHeader = new DescriptorChain(0, [], [seg(0x100, 16), seg(0x3000, 1)], 0, 17);
  const r = parseRequest(memory, writableHeader, 100n);
  assert.deepEqual(r, { ok: false, status: BlkStatus.IOERR, why: 'its header has 0 device-readable bytes, not 16' });
});

test('sliceSegments and the drive serial', () => {
  const s = [seg(0, 10), seg(100, 10), seg(200, 10)];
  assert.deepEqual(sliceSegments(s, 5, 10), [seg(5, 5), seg(100, 5)]);
  assert.deepEqual(sliceSegments(s, 10, 20), [seg(100, 10), seg(200, 10)]);
  assert.deepEqual(sliceSegments(s, 30, 0), []);
  assert.deepEqual(driveSerial('rootfs'), Buffer.concat([Buffer.from('rootfs'), Buffer.alloc(14)]));
  assert.equal(driveSerial('a-very-long-drive-identifier').toString(), 'a-very-long-drive-id');
});
