import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clearStartupMarks, markStartup, startupMarksReport } from './startup-marks';

test('startup marks report each label with a non-decreasing time since process start', () => {
  clearStartupMarks();
  markStartup('first');
  markStartup('second');
  const parts = startupMarksReport().split(', ').map((p) => p.split(' '));
  assert.deepEqual(parts.map(([label]) => label), ['first', 'second']);
  const [a, b] = parts.map(([, ms]) => Number(ms));
  assert.ok(a > 0 && b >= a, `${a} then ${b}`);
  clearStartupMarks();
  assert.equal(startupMarksReport(), '');
});
