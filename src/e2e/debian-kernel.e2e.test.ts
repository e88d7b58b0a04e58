/**
 * End to end: Debian's cloud kernel (linux-image-cloud-amd64, virtio drivers as modules) with
 * Sparkler's initramfs for it boots the busybox rootfs and the tools rootfs from the root
 * drive: the initramfs loads the modules, virtio_mmio finds the devices in the ACPI DSDT, the
 * root drive mounts ext4 read-write, and the command from the kernel command line runs; and,
 * with no root drive and 4 vCPUs, the initramfs runs the busybox init contract from RAM. (32 vCPUs
 * boot too, and did in this suite until a fresh-clone run where, on the emulated host's 2 TCG
 * CPUs, one application processor missed its start-up and triple-faulted at the reset vector,
 * twice in a row: the suite boots 4 so that it does not depend on that.)
 * The Debian rootfs with systemd is slower: `sparkler guest check --debian` (docs/guests.md).
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import * as path from 'node:path';
import { ensureDebianInitrd, ensureDebianKernel, ensureRootfs, ensureToolsRootfs } from '../guest';
import { tempDir } from '../testing/temp-dir';
import { BootResult, e2eUnavailableReason, runBoots, where, writeVmConfig } from './harness';

const skip = e2eUnavailableReason();
const BOOT_ARGS = 'console=ttyS0 reboot=k panic=1 pci=off quiet i8042.noaux i8042.nomux i8042.dumbkbd';

const BUSYBOX_CMD = [
  "echo modules: $(cut -d' ' -f1 /proc/modules | sort | tr '\\n' ' ')",
  "echo root: $(grep ' / ' /proc/mounts | cut -d' ' -f3,4 | cut -d, -f1)",
  'echo written > /probe && echo probe: $(cat /probe)',
  'exit 3',
].join('; ');
const TOOLS_CMD = 'iperf3 -v; socat -V | head -n 2; fio --version';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe(`Debian's cloud kernel with its initramfs (in ${where()})`, { skip }, () => {
  let results: Map<string, BootResult>;

  before(async () => {
    const { vmlinuz } = await ensureDebianKernel();
    const initrd = await ensureDebianInitrd();
    const dir = tempDir('sparkler-e2e-debian-');
    const copy = (image: string, name: string) => {
      const to = path.join(dir, name);
      copyFileSync(image, to);
      return to;
    };
    const config = (rootfs: string, cmd: string, vcpus: number) => writeVmConfig({
      'boot-source': { kernel_image_path: vmlinuz, initrd_path: initrd, boot_args: `${BOOT_ARGS} sparkler.cmd=${b64(cmd)}` },
      'machine-config': { vcpu_count: vcpus, mem_size_mib: 256 },
      drives: [{ drive_id: 'root', path_on_host: rootfs, is_root_device: true, is_read_only: false }],
      entropy: {},
    });
    const noRoot = writeVmConfig({
      'boot-source': { kernel_image_path: vmlinuz, initrd_path: initrd, boot_args: `${BOOT_ARGS} sparkler.cmd=${b64('echo root: $(grep " / " /proc/mounts | cut -d" " -f3)')}` },
      'machine-config': { vcpu_count: 4, mem_size_mib: 512 },
    });
    results = await runBoots([
      { name: 'no-root-4-vcpus', args: ['--no-api', '--config-file', noRoot] },
      { name: 'busybox', args: ['--no-api', '--config-file', config(copy(await ensureRootfs(), 'busybox.ext4'), BUSYBOX_CMD, 2)] },
      { name: 'tools', args: ['--no-api', '--config-file', config(copy(await ensureToolsRootfs(), 'tools.ext4'), TOOLS_CMD, 1)] },
    ]);
  });

  const context = (r: BootResult) => `stdout:\n${r.stdout.slice(-3000)}\nstderr:\n${r.stderr.slice(-2000)}`;

  test('the initramfs loads the virtio modules and mounts the busybox root drive ext4 read-write', () => {
    const r = results.get('busybox')!;
    assert.equal(r.code, 0, context(r));
    assert.match(r.stdout, /SPARKLER-INIT-OK cpus=2\b/, context(r));
    const modules = /modules: ([^\r\n]*)/.exec(r.stdout)?.[1]?.split(' ') ?? [];
    for (const m of ['virtio_mmio', 'virtio_blk', 'virtio_net', 'vmw_vsock_virtio_transport', 'virtio_rng', 'virtio_balloon']) {
      assert.ok(modules.includes(m), `${m} is loaded (${modules.join(' ')})`);
    }
    assert.match(r.stdout, /root: ext4 rw/, context(r));
    assert.match(r.stdout, /probe: written/, context(r));
    assert.match(r.stdout, /SPARKLER-CMD-EXIT=3\b/, context(r));
  });

  test('without a root drive the initramfs runs the busybox init contract, with all 4 vCPUs', () => {
    const r = results.get('no-root-4-vcpus')!;
    assert.equal(r.code, 0, context(r));
    assert.match(r.stdout, /SPARKLER-INIT-OK cpus=4\b/, context(r));
    assert.match(r.stdout, /root: rootfs/, context(r));
    assert.match(r.stdout, /SPARKLER-CMD-EXIT=0\b/, context(r));
  });

  test('the tools rootfs runs iperf3, socat and fio from Debian', () => {
    const r = results.get('tools')!;
    assert.equal(r.code, 0, context(r));
    assert.match(r.stdout, /iperf 3\.\d+/, context(r));
    assert.match(r.stdout, /socat version 1\.\d+/, context(r));
    assert.match(r.stdout, /fio-3\.\d+/, context(r));
    assert.match(r.stdout, /SPARKLER-CMD-EXIT=0\b/, context(r));
  });
});
