import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { DEBIAN_SPECS } from './debian-specs';
import { SPECS, artifactInputs, guestDir, hashInputs, type PackageVersions } from './inputs';

const versions = (v: string): PackageVersions => (pkgs) => Object.fromEntries(pkgs.map((p) => [p, v]));

test('every file a Debian artifact names exists under guest/', () => {
  for (const spec of Object.values(DEBIAN_SPECS)) {
    for (const file of spec.files) assert.ok(existsSync(path.join(guestDir(), file)), `${spec.kind}: guest/${file}`);
    assert.ok(spec.files.includes(spec.script), `${spec.kind}'s script is one of its inputs`);
  }
});

test('the version apt would download is an input: a new kernel upload gives a new artifact', () => {
  const spec = SPECS['debian-kernel'];
  const hash = (apt: string) => hashInputs(artifactInputs(spec, versions('1'), guestDir(), versions(apt)));
  assert.equal(hash('6.1.192-3'), hash('6.1.192-3'));
  assert.notEqual(hash('6.1.192-3'), hash('6.1.193-1'));
  assert.deepEqual(spec.env?.({ 'linux-image-cloud-amd64': '6.1.192-3' }), { DEBIAN_KERNEL_VERSION: '6.1.192-3' });
});

test('the Debian initramfs is made from the Debian kernel artifact, passed to its script', () => {
  const spec = SPECS['debian-initrd'];
  assert.deepEqual(spec.after, ['debian-kernel']);
  assert.deepEqual(spec.args('/out', '/work', ['/cache/debian-kernel/abc']), ['/out/initrd.cpio.gz', '/work', '/cache/debian-kernel/abc']);
});

test('the Debian rootfs includes the tools the issue asks for, and systemd as init', () => {
  const packages = SPECS['debian-rootfs'].env!({}).DEBIAN_PACKAGES!.split(',');
  for (const p of ['systemd', 'systemd-sysv', 'iperf3', 'socat', 'fio', 'curl', 'iproute2', 'python3']) assert.ok(packages.includes(p), p);
});
