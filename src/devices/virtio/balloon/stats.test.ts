import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_STAT_ENTRIES } from './constants';
import { encodeStats, parseStats, STAT_NAMES } from './stats';

test('every Linux tag maps to its Firecracker name, in tag order', () => {
  const entries = STAT_NAMES.map((_, tag) => [tag, tag * 10] as [number, number]);
  const { stats, unknownTags } = parseStats(encodeStats(entries));
  assert.deepEqual(unknownTags, []);
  assert.equal(stats.swap_in, 0);
  assert.equal(stats.free_memory, 40);
  assert.equal(stats.direct_reclaim, 150);
  assert.equal(Object.keys(stats).length, 16);
});

test('garbage: a partial trailing entry is ignored, later entries of a tag win, huge values clamp', () => {
  const buf = Buffer.concat([encodeStats([[4, 1n], [4, 2n], [5, 2n ** 64n - 1n], [0xffff, 3n]]), Buffer.from([1, 2, 3])]);
  const { stats, unknownTags } = parseStats(buf);
  assert.deepEqual(stats, { free_memory: 2, total_memory: Number.MAX_SAFE_INTEGER });
  assert.deepEqual(unknownTags, [0xffff]);
  assert.deepEqual(parseStats(Buffer.alloc(0)), { stats: {}, unknownTags: [] });
});

test('at most MAX_STAT_ENTRIES entries are read from a buffer', () => {
  const many = encodeStats(Array.from({ length: MAX_STAT_ENTRIES + 10 }, () => [99, 1] as [number, number]));
  assert.equal(parseStats(many).unknownTags.length, MAX_STAT_ENTRIES);
});
