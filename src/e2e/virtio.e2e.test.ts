/**
 * End to end: virtio-block and virtio-rng under the project's microVM kernel. The guest boots
 * from an ext4 root drive (no initrd), writes a file that survives a reboot, is refused writes
 * on a read-only drive, reads /dev/hwrng, and reads a rate-limited drive at its cap.
 * Every drive is a temporary copy: the cached rootfs is never written.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureKernel, ensureRootfs } from '../guest';
import { BootResult, e2eUnavailableReason, runBoots, where, writeVmConfig } from './harness';

const skip = e2eUnavailableReason();
const BOOT_ARGS = 'console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd';
const MiB = 1024 * 1024;
/** 1 MiB/s as 128 KiB every 125 ms: a small bucket, so the initial full bucket barely skews an 8 MiB read. */
const ONE_MIB_PER_S = { bandwidth: { size: 128 * 1024, refill_time: 125 } };
const DD_BYTES = 8 * MiB;

const WRITE_CMD = [
  'echo persisted-$((6*7)) >/persist.txt && sync && echo WROTE-OK',
  'echo ROOT-SIZE=$(cat /sys/block/vda/size) ROOT-SERIAL=$(cat /sys/block/vda/serial)',
  'echo VDB-RO=$(cat /sys/block/vdb/ro)',
  'dd if=/dev/zero of=/dev/vdb bs=512 count=1 oflag=direct 2>/dev/null; echo RO-WRITE-EXIT=$?',
  'echo HWRNG-BYTES=$(cat /dev/hwrng | head -c 64 | wc -c)',
].join('; ');
const READ_CMD = 'echo READBACK=$(cat /persist.txt)';
const DD_CMD = `dd if=/dev/vdb of=/dev/null bs=64k count=${DD_BYTES / (64 * 1024)} iflag=direct 2>&1`;

function tempCopy(src: string, name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-e2e-virtio-'));
  const file = path.join(dir, name);
  fs.copyFileSync(src, file);
  return file;
}

function tempFile(name: string, bytes: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-e2e-virtio-'));
  const file = path.join(dir, name);
  fs.writeFileSync(file, Buffer.alloc(bytes, 0x61));
  return file;
}

const context = (r: BootResult) => `exit ${r.code}\nstdout:\n${r.stdout.slice(-4000)}\nstderr:\n${r.stderr.slice(-2000)}`;

describe(`virtio-block and virtio-rng in a Linux guest (in ${where()})`, { skip }, () => {
  let results: Map<string, BootResult>;
  let rootCopy: string;
  let roData: string;

  before(async () => {
    const kernel = await ensureKernel();
    const rootfs = await ensureRootfs();
    rootCopy = tempCopy(rootfs, 'root.ext4');
    roData = tempFile('ro.img', MiB);
    const config = (cmd: string, drives: object[], extra: object = {}) => writeVmConfig({
      'boot-source': { kernel_image_path: kernel, boot_args: `${BOOT_ARGS} sparkler.cmd=${Buffer.from(cmd).toString('base64')}` },
      'machine-config': { vcpu_count: 1, mem_size_mib: 128 },
      drives,
      ...extra,
    });
    const root = (engine: string) => ({ drive_id: 'rootfs', path_on_host: rootCopy, is_root_device: true, is_read_only: false, cache_type: 'Writeback', io_engine: engine });
    results = await runBoots([
      {
        name: 'write',
        args: ['--no-api', '--config-file', config(WRITE_CMD, [
          root('Sync'),
          { drive_id: 'scratch', path_on_host: roData, is_root_device: false, is_read_only: true },
        ], { entropy: {} })],
      },
      { name: 'readback', args: ['--no-api', '--config-file', config(READ_CMD, [root('Async')])] },
      {
        name: 'ratelimited',
        args: ['--no-api', '--config-file', config(DD_CMD, [
          { drive_id: 'rootfs', path_on_host: tempCopy(rootfs, 'root-ro.ext4'), is_root_device: true, is_read_only: true },
          { drive_id: 'capped', path_on_host: tempFile('capped.img', DD_BYTES), is_root_device: false, io_engine: 'Async', rate_limiter: ONE_MIB_PER_S },
        ])],
      },
    ]);
  });

  test('boots from an ext4 root drive read-write and writes a file; GET_ID gives the drive_id', () => {
    const r = results.get('write')!;
    assert.equal(r.code, 0, context(r));
    assert.match(r.stdout, /SPARKLER-INIT-OK/, context(r));
    assert.match(r.stdout, /WROTE-OK/, context(r));
    assert.match(r.stdout, new RegExp(`ROOT-SIZE=${fs.statSync(rootCopy).size / 512}\\b`), context(r));
    assert.match(r.stdout, /ROOT-SERIAL=rootfs\b/, context(r));
  });

  test('the file is there after a reboot (read back through the Async engine), and in the host file', () => {
    const r = results.get('readback')!;
    assert.equal(r.code, 0, context(r));
    assert.match(r.stdout, /READBACK=persisted-42/, context(r));
    const debugfs = spawnSync('debugfs', ['-R', 'cat /persist.txt', rootCopy], { encoding: 'utf8' });
    if (debugfs.status === 0 && debugfs.stdout !== '') assert.equal(debugfs.stdout, 'persisted-42\n');
  });

  test('a read-only second drive refuses writes', () => {
    const r = results.get('write')!;
    assert.match(r.stdout, /VDB-RO=1\b/, context(r));
    assert.match(r.stdout, /RO-WRITE-EXIT=[1-9]/, context(r));
    assert.deepEqual(fs.readFileSync(roData), Buffer.alloc(MiB, 0x61), 'the host file is untouched');
  });

  test('/dev/hwrng returns 64 bytes', () => {
    const r = results.get('write')!;
    assert.match(r.stdout, /HWRNG-BYTES=64\b/, context(r));
  });

  test('a dd against a drive capped at 1 MiB/s runs within 10% of the cap', (t) => {
    const r = results.get('ratelimited')!;
    assert.equal(r.code, 0, context(r));
    const m = /(\d+) bytes \([^)]*\) copied, ([\d.]+) seconds/.exec(r.stdout);
    assert.ok(m, `no dd summary in the output\n${context(r)}`);
    const bytes = Number(m[1]);
    const seconds = Number(m[2]);
    const rate = bytes / seconds / MiB;
    t.diagnostic(`dd read ${bytes} bytes in ${seconds} s: ${rate.toFixed(3)} MiB/s against a 1 MiB/s cap`);
    assert.equal(bytes, DD_BYTES);
    assert.ok(rate > 0.9 && rate < 1.1, `measured ${rate.toFixed(3)} MiB/s`);
  });
});
