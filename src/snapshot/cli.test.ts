import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '../testing/temp-dir';
import { encodeSnapshotFile } from './file-format';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'sparkler');
const run = (...args: string[]) => spawnSync(BIN, args, { encoding: 'utf8' });

test('--snapshot-version prints the format this build writes; --describe-snapshot a file\'s, or why it cannot', () => {
  assert.equal(run('--snapshot-version').stdout, 'v1.0.0\n');
  const dir = tempDir('sparkler-snap-cli-');
  const v7 = path.join(dir, 'v7.snap');
  fs.writeFileSync(v7, encodeSnapshotFile({ any: 1 }, 7));
  const described = run('--describe-snapshot', v7);
  assert.equal(described.status, 0);
  assert.equal(described.stdout, 'v7.0.0\n');
  const notOne = run('--describe-snapshot', BIN);
  assert.equal(notOne.status, 1);
  assert.match(notOne.stderr, /is not a Sparkler snapshot/);
});

test('snapshot merge without its paths explains its usage', () => {
  const r = run('snapshot', 'merge', '--memory-path', 'x');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /needs --memory-path BASE and --diff-path DIFF/);
});
