import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FLAG_ADDRESS, FLAG_THEN_HALT_GUEST, percentiles, privateKib } from './clones-bench';

test('percentiles: median of odd and even counts, p95 as the nearest rank', () => {
  assert.deepEqual(percentiles([3, 1, 2]), { median: 2, p95: 3, min: 1, max: 3 });
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.deepEqual(percentiles(xs), { median: 50.5, p95: 95, min: 1, max: 100 });
  assert.ok(Number.isNaN(percentiles([]).median));
});

test('privateKib adds Private_Dirty and Private_Clean of smaps_rollup', () => {
  const text = 'Rss:               40000 kB\nPss:               30000 kB\nPrivate_Clean:      1200 kB\nPrivate_Dirty:     20000 kB\n';
  assert.equal(privateKib(text), 21200);
});

test('the clone guest spins on the flag byte, then writes its mark and halts', () => {
  // mov $FLAG_ADDRESS,%ebx is the instruction after mov $0x3f8,%dx.
  assert.equal(FLAG_THEN_HALT_GUEST.readUInt8(4), 0xbb);
  assert.equal(FLAG_THEN_HALT_GUEST.readUInt32LE(5), FLAG_ADDRESS);
  assert.equal(FLAG_THEN_HALT_GUEST.subarray(-3).toString('hex'), 'f4ebfd', 'hlt; jmp back to the hlt');
});
