import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { launcherSource, shebangFor, writeLauncher } from './launcher';

test('the launcher names node by absolute path with its one flag; a path a shebang cannot carry gets env', () => {
  assert.equal(shebangFor('/usr/bin/node'), '#!/usr/bin/node --preserve-symlinks-main');
  assert.equal(shebangFor('/opt/my node/bin/node'), '#!/usr/bin/env -S node --preserve-symlinks-main', 'a blank would split the line');
  assert.equal(shebangFor(`/${'n'.repeat(300)}/node`), '#!/usr/bin/env -S node --preserve-symlinks-main', 'longer than the kernel reads');
  assert.equal(shebangFor('node'), '#!/usr/bin/env -S node --preserve-symlinks-main', 'a relative path would be resolved against the cwd');
  assert.match(launcherSource('/usr/bin/node'), /^#!\/usr\/bin\/node --preserve-symlinks-main\n'use strict';\n/);
});

test('the written launcher runs the built Sparkler, also through a symlink, without env', () => {
  const home = path.resolve(__dirname, '..', '..');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-launcher-'));
  try {
    // A launcher for this checkout, written elsewhere: its own dist/ is a link to the real one.
    fs.symlinkSync(path.join(home, 'dist'), path.join(dir, 'dist'));
    const bin = writeLauncher(dir);
    assert.equal(fs.statSync(bin).mode & 0o111, 0o111, 'executable');
    const link = path.join(dir, 'sparkler-link');
    fs.symlinkSync(bin, link);
    for (const entry of [bin, link]) {
      const run = spawnSync(entry, ['--version'], { encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, /^Firecracker v\d+\.\d+\.\d+ \(Sparkler v\d+\.\d+\.\d+\)\n$/);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
