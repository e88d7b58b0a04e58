import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_CONNECT_LINE, parseConnectLine } from './connect-line';
import { decodeHeader, encodeHeader, HEADER_SIZE, Op, PacketHeader, wrapDiff } from './packet';

test('a header encodes to 44 little-endian bytes and decodes back', () => {
  const h: PacketHeader = { srcCid: 2, dstCid: 3, srcPort: 2 ** 30, dstPort: 52, len: 7, type: 1, op: Op.RW, flags: 3, bufAlloc: 262144, fwdCnt: 0xffff_ffff };
  const b = encodeHeader(h);
  assert.equal(b.length, HEADER_SIZE);
  assert.equal(b.readUInt32LE(16), 2 ** 30);
  assert.equal(b.readUInt16LE(30), Op.RW);
  assert.deepEqual(decodeHeader(b), h);
});

test('a CID beyond 2^53 decodes as -1 (never a valid CID); a short header throws', () => {
  const b = encodeHeader({ srcCid: 0, dstCid: 2, srcPort: 0, dstPort: 0, len: 0, type: 1, op: 1, flags: 0, bufAlloc: 0, fwdCnt: 0 });
  b.writeBigUInt64LE(2n ** 64n - 1n, 0);
  assert.equal(decodeHeader(b).srcCid, -1);
  assert.throws(() => decodeHeader(b.subarray(0, 43)), /44 bytes/);
});

test('credit counters wrap at 2^32', () => {
  assert.equal(wrapDiff(5, 0xffff_fffe), 7);
  assert.equal(wrapDiff(10, 4), 6);
});

test('CONNECT line: a port, the bytes after the newline kept', () => {
  assert.deepEqual(parseConnectLine(Buffer.from('CONNECT 52\nhello')), { kind: 'port', port: 52, rest: Buffer.from('hello') });
  assert.deepEqual(parseConnectLine(Buffer.from('CONNECT 4294967295\n')), { kind: 'port', port: 4294967295, rest: Buffer.alloc(0) });
  assert.deepEqual(parseConnectLine(Buffer.from('CONNECT 5')), { kind: 'incomplete' });
  assert.deepEqual(parseConnectLine(Buffer.alloc(0)), { kind: 'incomplete' });
});

test('CONNECT line: garbage is refused with a reason', () => {
  for (const bad of ['CONNECT abc\n', 'connect 52\n', 'CONNECT  52\n', 'CONNECT 52 \n', 'CONNECT -1\n', 'CONNECT\n', '\n', 'CONNECT 5\u00002\n', 'OK 52\n']) {
    const r = parseConnectLine(Buffer.from(bad, 'latin1'));
    assert.equal(r.kind, 'invalid', JSON.stringify(bad));
  }
  assert.match((parseConnectLine(Buffer.from('CONNECT 4294967296\n')) as { reason: string }).reason, /larger than 4294967295/);
  assert.match((parseConnectLine(Buffer.alloc(MAX_CONNECT_LINE, 0x41)) as { reason: string }).reason, /no newline within 32 bytes/);
  assert.equal(parseConnectLine(Buffer.from(`CONNECT ${'0'.repeat(40)}1\n`)).kind, 'invalid');
  assert.equal(parseConnectLine(Buffer.alloc(MAX_CONNECT_LINE - 1, 0x41)).kind, 'incomplete');
});
