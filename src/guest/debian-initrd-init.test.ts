/** The functions of guest/debian/initrd-init, run under the host's busybox sh. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { BUSYBOX, guestDir } from './inputs';
import { tempDir } from '../testing/temp-dir';

const INIT = path.join(guestDir(), 'debian', 'initrd-init');
const noBusybox = existsSync(BUSYBOX) ? false : `${BUSYBOX} is missing (apt-get install busybox-static)`;

function withInit(snippet: string): string {
  const r = spawnSync(BUSYBOX, ['sh', '-c', `. "${INIT}"; ${snippet}`], {
    encoding: 'utf8',
    env: { SPARKLER_INIT_LIB: '1', PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

function tempFile(content: string): string {
  const file = path.join(tempDir('sparkler-debian-init-'), 'f');
  writeFileSync(file, content);
  return file;
}

// The shape of the modules.dep that depmod writes for Debian's cloud kernel.
const MODULES_DEP = [
  'kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko',
  'kernel/drivers/virtio/virtio_ring.ko:',
  'kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko',
  'kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko',
  'kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko',
  'kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko',
  'kernel/net/core/failover.ko:',
  '',
].join('\n');

test('module_files lists a module after its dependencies, deepest first', { skip: noBusybox }, () => {
  const dep = tempFile(MODULES_DEP);
  assert.deepEqual(withInit(`module_files virtio_net ${dep}`).trim().split('\n'), [
    'kernel/drivers/virtio/virtio_ring.ko',
    'kernel/drivers/virtio/virtio.ko',
    'kernel/net/core/failover.ko',
    'kernel/drivers/net/net_failover.ko',
    'kernel/drivers/net/virtio_net.ko',
  ]);
  assert.deepEqual(withInit(`module_files virtio_ring ${dep}`).trim().split('\n'), ['kernel/drivers/virtio/virtio_ring.ko']);
});

test('module_files treats - and _ in module names alike and fails for an unknown module', { skip: noBusybox }, () => {
  const dep = tempFile(MODULES_DEP);
  assert.match(withInit(`module_files virtio_rng ${dep}`), /hw_random\/virtio-rng\.ko\n$/);
  assert.match(withInit(`module_files virtio-rng ${dep}`), /hw_random\/virtio-rng\.ko\n$/);
  assert.equal(withInit(`module_files virtio_gpu ${dep} || echo missing`), 'missing\n');
});

test('the initramfs loads every virtio driver Sparkler devices need', () => {
  const modules = /^MODULES="([^"]*)"/m.exec(readFileSync(INIT, 'utf8'))?.[1]?.split(' ');
  assert.deepEqual(modules, ['virtio_mmio', 'virtio_blk', 'virtio_net', 'vmw_vsock_virtio_transport', 'virtio-rng', 'virtio_balloon']);
});

test('cmdline_param and cmdline_flag read root=, rw and ip= from the command line', { skip: noBusybox }, () => {
  const cmdline = tempFile('console=ttyS0 root=/dev/vda rw ip=172.16.0.2::172.16.0.1:255.255.255.0::eth0:off quiet\n');
  assert.equal(withInit(`cmdline_param root ${cmdline}`), '/dev/vda\n');
  assert.equal(withInit(`cmdline_param ip ${cmdline}`), '172.16.0.2::172.16.0.1:255.255.255.0::eth0:off\n');
  assert.equal(withInit(`cmdline_param init ${cmdline}`), '');
  assert.equal(withInit(`cmdline_flag rw ${cmdline} && echo yes`), 'yes\n');
  assert.equal(withInit(`cmdline_flag ro ${cmdline} || echo no`), 'no\n');
  // A word that merely starts with the name is not the flag.
  assert.equal(withInit(`cmdline_flag qui ${cmdline} || echo no`), 'no\n');
});

test('without root= the initramfs hands over to the busybox init contract; with it, to the root drive\'s init', () => {
  const text = readFileSync(INIT, 'utf8');
  assert.match(text, /exec switch_root \/newroot "\$\{init:-\/sbin\/init\}"/);
  assert.match(text, /umount \/sys \/proc\n\s+exec \/sbin\/init/);
});
