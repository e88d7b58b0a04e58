import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { SPECS, artifactInputs, dpkgVersions, hashInputs, type PackageVersions } from './inputs';
import { tempDir } from '../testing/temp-dir';

test('hashInputs is stable and sensitive to names, contents and boundaries', () => {
  const a = hashInputs([{ name: 'x', content: 'abc' }, { name: 'y', content: 'def' }]);
  assert.equal(a, hashInputs([{ name: 'x', content: Buffer.from('abc') }, { name: 'y', content: 'def' }]));
  assert.match(a, /^[0-9a-f]{64}$/);
  assert.notEqual(a, hashInputs([{ name: 'x', content: 'abd' }, { name: 'y', content: 'def' }]));
  assert.notEqual(a, hashInputs([{ name: 'z', content: 'abc' }, { name: 'y', content: 'def' }]));
  assert.notEqual(a, hashInputs([{ name: 'x', content: 'ab' }, { name: 'y', content: 'cdef' }]));
});

/** A fake guest/ folder holding every file any spec reads. */
function fakeGuestDir(): string {
  const root = tempDir('sparkler-guest-inputs-');
  for (const spec of Object.values(SPECS)) {
    for (const file of spec.files) {
      mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
      writeFileSync(path.join(root, file), `content of ${file}\n`);
    }
  }
  return root;
}

const versions = (v: string): PackageVersions => (pkgs) => Object.fromEntries(pkgs.map((p) => [p, v]));

test('the kernel hash changes when the config fragment, a script or a package version changes', () => {
  const root = fakeGuestDir();
  const base = hashInputs(artifactInputs(SPECS.kernel, versions('1.0'), root));
  assert.equal(base, hashInputs(artifactInputs(SPECS.kernel, versions('1.0'), root)));
  assert.notEqual(base, hashInputs(artifactInputs(SPECS.kernel, versions('1.1'), root)));
  writeFileSync(path.join(root, 'kernel/microvm.config'), 'CONFIG_SMP=y\n');
  const changedFragment = hashInputs(artifactInputs(SPECS.kernel, versions('1.0'), root));
  assert.notEqual(base, changedFragment);
  writeFileSync(path.join(root, 'kernel/build.sh'), '#!/bin/sh\n');
  assert.notEqual(changedFragment, hashInputs(artifactInputs(SPECS.kernel, versions('1.0'), root)));
});

test('the init script is an input of both the initrd and the rootfs, not of the kernel', () => {
  const root = fakeGuestDir();
  const before = (['kernel', 'initrd', 'rootfs'] as const).map((k) => hashInputs(artifactInputs(SPECS[k], versions('1'), root)));
  writeFileSync(path.join(root, 'init/init'), '#!/bin/sh\necho changed\n');
  const after = (['kernel', 'initrd', 'rootfs'] as const).map((k) => hashInputs(artifactInputs(SPECS[k], versions('1'), root)));
  assert.equal(after[0], before[0]);
  assert.notEqual(after[1], before[1]);
  assert.notEqual(after[2], before[2]);
  assert.notEqual(after[1], after[2], 'initrd and rootfs hash to different folders');
});

test('dpkgVersions names a missing package and how to install it', (t) => {
  try {
    dpkgVersions(['dpkg']);
  } catch {
    t.skip('dpkg-query is not usable on this machine');
    return;
  }
  assert.throws(() => dpkgVersions(['dpkg', 'sparkler-no-such-package']), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'EGUESTDEPS');
    assert.match(err.message, /sparkler-no-such-package/);
    assert.match(err.message, /apt-get install/);
    return true;
  });
});
