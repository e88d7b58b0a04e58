import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { guestDir } from './inputs';
import { tempDir } from '../testing/temp-dir';

const checker = path.join(guestDir(), 'kernel', 'check-fragment.sh');

function check(fragment: string, dotconfig: string) {
  const dir = tempDir('sparkler-fragment-');
  writeFileSync(path.join(dir, 'fragment'), fragment);
  writeFileSync(path.join(dir, '.config'), dotconfig);
  return spawnSync('sh', [checker, path.join(dir, 'fragment'), path.join(dir, '.config')], { encoding: 'utf8' });
}

const FRAGMENT = `# comment lines are ignored
CONFIG_SMP=y
CONFIG_NR_CPUS=32
# CONFIG_MODULES is not set
# CONFIG_STRICT_DEVMEM is not set
`;

test('a .config that kept every option passes', () => {
  const r = check(FRAGMENT, 'CONFIG_SMP=y\nCONFIG_NR_CPUS=32\n# CONFIG_MODULES is not set\nCONFIG_OTHER=y\n');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '');
});

test('options that were dropped or changed are each named', () => {
  const r = check(FRAGMENT, '# CONFIG_SMP is not set\nCONFIG_NR_CPUS=64\nCONFIG_STRICT_DEVMEM=y\n');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /3 option\(s\)/);
  assert.match(r.stderr, /CONFIG_SMP: wanted y, got not set/);
  assert.match(r.stderr, /CONFIG_NR_CPUS: wanted 32, got 64/);
  assert.match(r.stderr, /CONFIG_STRICT_DEVMEM: wanted not set, got y/);
  assert.doesNotMatch(r.stderr, /CONFIG_MODULES/, 'an absent symbol counts as off');
});

test('an option missing from .config entirely is reported as absent', () => {
  const r = check('CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y\n', 'CONFIG_VIRTIO=y\n');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES: wanted y, got absent/);
});

test('the project fragment only uses lines the checker understands', () => {
  const r = spawnSync('grep', ['-vE', '^(#.*|CONFIG_[A-Za-z0-9_]+=.+|)$', path.join(guestDir(), 'kernel', 'microvm.config')], { encoding: 'utf8' });
  assert.equal(r.stdout, '', 'unexpected lines in microvm.config');
});
