import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory, GuestMemoryError } from '../memory/guest-memory';
import { isRamRange, readGuest, writeGuest, zeroGuest } from './guest-write';

const mem = () => GuestMemory.fromLayout([{ start: 0, size: 0x1000 }, { start: 0x1000, size: 0x1000 }, { start: 0x3000, size: 0x1000 }]);

test('writes and reads across contiguous regions', () => {
  const m = mem();
  const data = Buffer.alloc(0x1800, 7);
  writeGuest(m, 0x800, data);
  assert.deepEqual(readGuest(m, 0x800, 0x1800), data);
  zeroGuest(m, 0xf00, 0x200);
  assert.equal(m.readU8(0xeff), 7);
  assert.equal(m.readU8(0xf00), 0);
  assert.equal(m.readU8(0x10ff), 0);
  assert.equal(m.readU8(0x1100), 7);
});

test('isRamRange sees holes', () => {
  const m = mem();
  assert.ok(isRamRange(m, 0, 0x2000));
  assert.ok(!isRamRange(m, 0x1800, 0x1000), 'runs into the hole at 0x2000');
  assert.ok(isRamRange(m, 0x3000, 0x1000));
  assert.ok(!isRamRange(m, 0x3000, 0x1001));
  assert.ok(!isRamRange(m, -1, 1));
});

test('a write into a hole throws GuestMemoryError', () => {
  assert.throws(() => writeGuest(mem(), 0x1f00, Buffer.alloc(0x200)), GuestMemoryError);
});
