/**
 * Boots the cached kernel with the initrd and the rootfs under QEMU's emulator (TCG, no KVM
 * needed, ~2 s a boot) to show the artifacts work together: the init marker, sparkler.cmd,
 * virtio-mmio found both on the command line and in the ACPI DSDT, an ext4 root that takes
 * writes, and `reboot=k` ending the machine through the i8042. Skipped, saying why, when
 * QEMU or the kernel is missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { QEMU, qemuKernelSkipReason } from '../testing/qemu-tcg';
import { ensureInitrd, ensureRootfs, guestCachePaths } from './index';

const skip = qemuKernelSkipReason();

interface Boot { output: string; code: number | null; timedOut: boolean }

/** Runs QEMU until it exits (a guest reboot with -no-reboot) or the timeout. */
function qemu(args: string[], timeoutMs = 90_000): Promise<Boot> {
  return new Promise((resolve, reject) => {
    const child = spawn(QEMU, ['-accel', 'tcg', '-cpu', 'max', '-m', '256', '-nodefaults', '-no-user-config',
      '-display', 'none', '-serial', 'stdio', '-no-reboot', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ output, code, timedOut }); });
  });
}

const b64 = (cmd: string) => Buffer.from(cmd).toString('base64');
// QEMU's microvm has no PIT calibration under TCG and no i8042: give the TSC rate, and
// reboot by triple fault instead.
const MICROVM = 'microvm,x-option-roms=off,pit=on,pic=on,rtc=on';
const MICROVM_CMDLINE = 'console=ttyS0 reboot=t panic=1 pci=off tsc_early_khz=2000000';

test('initrd boot: marker, sparkler.cmd and a reboot through the i8042 (reboot=k)', { skip }, async () => {
  const initrd = await ensureInitrd();
  const boot = await qemu(['-M', 'pc', '-smp', '2', '-kernel', guestCachePaths().kernel.bzImage, '-initrd', initrd,
    '-append', `console=ttyS0 reboot=k panic=1 pci=off sparkler.cmd=${b64('echo "hi from $(uname -m)"; exit 7')}`]);
  assert.equal(boot.timedOut, false, `QEMU did not exit: the guest did not reset\n${boot.output}`);
  assert.match(boot.output, /^SPARKLER-INIT-OK cpus=2\r?$/m, boot.output);
  assert.match(boot.output, /^hi from x86_64\r?$/m);
  assert.match(boot.output, /^SPARKLER-CMD-EXIT=7\r?$/m);
});

test('rootfs boot with virtio-mmio devices from the command line: writes survive', { skip }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sparkler-qemu-'));
  try {
    const disk = path.join(dir, 'rootfs.ext4');
    copyFileSync(await ensureRootfs(), disk); // never write to the cached image
    const boot = await qemu(['-M', `${MICROVM},acpi=off`, '-smp', '2', '-kernel', guestCachePaths().kernel.bzImage,
      '-drive', `id=root,file=${disk},format=raw,if=none`, '-device', 'virtio-blk-device,drive=root',
      '-append', `${MICROVM_CMDLINE} root=/dev/vda rw sparkler.cmd=${b64('echo written-in-guest >/root/proof && sync && cat /root/proof')}`]);
    assert.equal(boot.timedOut, false, boot.output);
    assert.match(boot.output, /virtio_mmio\.device=/, 'QEMU put the devices on the command line');
    assert.match(boot.output, /^SPARKLER-INIT-OK cpus=2\r?$/m, boot.output);
    assert.match(boot.output, /^SPARKLER-CMD-EXIT=0\r?$/m, boot.output);
    const proof = execFileSync('debugfs', ['-R', 'cat /root/proof', disk], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    assert.equal(proof, 'written-in-guest\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rootfs boot with virtio-mmio devices from the ACPI DSDT and 3 CPUs', { skip }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sparkler-qemu-'));
  try {
    const disk = path.join(dir, 'rootfs.ext4');
    copyFileSync(await ensureRootfs(), disk);
    const boot = await qemu(['-M', MICROVM, '-smp', '3', '-kernel', guestCachePaths().kernel.bzImage,
      '-drive', `id=root,file=${disk},format=raw,if=none,readonly=on`, '-device', 'virtio-blk-device,drive=root',
      '-device', 'virtio-rng-device',
      '-append', `${MICROVM_CMDLINE} root=/dev/vda sparkler.cmd=${b64('ls /sys/bus/virtio/drivers/virtio_rng; head -c 8 /dev/hwrng | wc -c')}`]);
    assert.equal(boot.timedOut, false, boot.output);
    assert.doesNotMatch(boot.output, /Unable to load the System Description Tables/);
    assert.match(boot.output, /^SPARKLER-INIT-OK cpus=3\r?$/m, boot.output);
    assert.match(boot.output, /^8\r?$/m, 'virtio-rng gave 8 bytes');
    assert.match(boot.output, /^SPARKLER-CMD-EXIT=0\r?$/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
