import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory } from './guest-memory';
test('copyIn and copyOut move bytes between a buffer range and guest RAM, checked on both sides', () => {
  const memory = GuestMemory.fromLayout([{ start: 0x1000, size: 0x1000 }, { start: 0x4000, size: 0x1000 }]);
  const src = Buffer.from('..hello..');
  memory.copyIn(0x1ffb, src, 2, 5);
  assert.equal(memory.view(0x1ffb, 5).toString(), 'hello');
  const dst = Buffer.alloc(9, '.');
  memory.copyOut(0x1ffb, 5, dst, 4);
  assert.equal(dst.toString(), '....hello');
  assert.throws(() => memory.copyIn(0x1ffc, src, 2, 5), /straddles two regions/, 'past the end of a region');
  assert.throws(() => memory.copyIn(0x3000, src, 0, 1), /outside guest RAM/);
  assert.throws(() => memory.copyIn(0x1000, src, 5, 5), RangeError, 'past the end of the source');
  assert.throws(() => memory.copyOut(0x1000, 4, dst, 6), RangeError, 'past the end of the target');
  assert.equal(memory.view(0x1000, 4).toString('hex'), '00000000', 'a refused copy wrote nothing');
});
