import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sumGroups } from './block-metrics';

test('the block aggregate is the field-wise sum of the per-drive groups', () => {
  assert.deepEqual(sumGroups([{ read_count: 2, write_bytes: 512 }, { read_count: 3, flush_count: 1 }]), { read_count: 5, write_bytes: 512, flush_count: 1 });
  assert.deepEqual(sumGroups([]), {});
});
