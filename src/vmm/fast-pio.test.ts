/** Unit tests of the fast path's table and ring (the C side's stores simulated on the same layout). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeRule, FAST_PIO_BYTES, FAST_PIO_RING_OFFSET, FAST_PIO_RING_SIZE, FastPioTable } from './fast-pio';

/** What C does to append: the byte at tail % size, then tail + 1, and the notify flag. */
function append(buffer: ArrayBuffer, bytes: number[]): void {
  const words = new Uint32Array(buffer, 0, 16);
  const ring = new Uint8Array(buffer, FAST_PIO_RING_OFFSET);
  for (const b of bytes) {
    ring[words[8] % FAST_PIO_RING_SIZE] = b;
    words[8] = (words[8] + 1) >>> 0;
  }
  words[11] = 1;
}

test('rules encode the port, the direction, the action and the constant as C reads them', () => {
  assert.equal(encodeRule({ port: 0x3fd, action: 'read-constant', value: 0x60 }), (0x3fd | (1 << 17) | (0x60 << 24)) >>> 0);
  assert.equal(encodeRule({ port: 0x3f8, action: 'write-ring' }), 0x3f8 | (1 << 16) | (2 << 17));
  assert.throws(() => encodeRule({ port: 0x10000, action: 'write-ring' }), RangeError);
  assert.throws(() => encodeRule({ port: 1, action: 'read-constant', value: 256 }), RangeError);
  const t = new FastPioTable(new ArrayBuffer(FAST_PIO_BYTES));
  t.setRule(7, { port: 0x3f8, action: 'write-ring' });
  assert.equal(t.rule(7), encodeRule({ port: 0x3f8, action: 'write-ring' }));
  t.setRule(7, undefined);
  assert.equal(t.rule(7), 0, 'a cleared rule is an empty word');
  assert.throws(() => t.setRule(8, undefined), RangeError);
  assert.throws(() => new FastPioTable(new ArrayBuffer(64)), RangeError);
});

test('the drain hands bytes over oldest first, across the wrap, frees them and clears notify', () => {
  const buffer = new ArrayBuffer(FAST_PIO_BYTES);
  const words = new Uint32Array(buffer, 0, 16);
  const t = new FastPioTable(buffer);
  const got: number[] = [];
  const take = (b: Uint8Array): void => { got.push(...b); };
  assert.equal(t.drain(take), 0);
  // Start near the end of the ring and of the u32 counter, so both wrap.
  words[8] = words[9] = 0xffffffff - 2;
  append(buffer, [1, 2, 3, 4, 5]);
  assert.equal(t.pending, 5);
  assert.equal(t.drain(take), 5);
  assert.deepEqual(got, [1, 2, 3, 4, 5]);
  assert.equal(t.pending, 0);
  assert.equal(words[11], 0, 'notify cleared, so C signals again');
  // A full ring drains whole.
  append(buffer, Array.from({ length: FAST_PIO_RING_SIZE }, (_, i) => i & 0xff));
  got.length = 0;
  assert.equal(t.drain(take), FAST_PIO_RING_SIZE);
  assert.deepEqual(got.slice(0, 3), [0, 1, 2]);
  assert.equal(got.length, FAST_PIO_RING_SIZE);
});

test('a drain whose consumer throws still frees the bytes (never applied twice)', () => {
  const buffer = new ArrayBuffer(FAST_PIO_BYTES);
  const t = new FastPioTable(buffer);
  append(buffer, [9, 9]);
  assert.throws(() => t.drain(() => { throw new Error('device failed'); }), /device failed/);
  assert.equal(t.pending, 0);
});
