/**
 * Real-KVM test of the device manager's wiring with a tiny guest: registers answer on the MMIO
 * bus, a QueueNotify write reaches the device through its ioeventfd without a vCPU exit, and the
 * command line the guest gets names every slot and the root drive.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildMicroVm } from './builder';
import { DEFAULT_MACHINE_CONFIG } from '../config/machine-config';
import { kvmUnavailableReason } from '../testing/kvm-available';
import { tinyKernel } from '../testing/tiny-guests';
import { waitFor } from '../testing/wait';
import { checkDriveFile, rootDeviceArgs } from '../devices/virtio/block/spec';
import { tempDir } from '../testing/temp-dir';

const skip = kvmUnavailableReason();

/**
 * Maps 3 GiB with a 2 MiB page (as HELLO_BOOT_TIMER_RESET does), reads MagicValue of slot 0
 * and sends it to port 0x80, writes 0 to slot 0's QueueNotify, resets through the i8042.
 *   mov $0xc003,%eax; mov %rax,0xa018; mov $0xc0000083,%eax; mov %rax,0xc000; mov %cr3,%rax; mov %rax,%cr3
 *   mov $0xc0001000,%ebx; mov (%rbx),%eax; out %eax,$0x80; movl $0,0x50(%rbx)
 *   mov $0xfe,%al; out %al,$0x64; 1: hlt; jmp 1b
 */
const NOTIFY_GUEST = Buffer.from(
  'b803c000004889042518a00000b8830000c04889042500c000000f20d80f22d8' +
    'bb001000c08b03e780c7435000000000b0fee664f4ebfd',
  'hex',
);

function tempFile(name: string, bytes: Buffer): string {
  const dir = tempDir('sparkler-virtio-');
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

test('virtio-mmio slots: registers on the bus, queue notifications through ioeventfds, cmdline fragments', { skip }, async () => {
  const values: number[] = [];
  const vmm = buildMicroVm({
    bootSource: { kernelImagePath: tempFile('tiny.elf', tinyKernel(NOTIFY_GUEST)), bootArgs: 'console=ttyS0' },
    machineConfig: DEFAULT_MACHINE_CONFIG,
    drives: [
      { driveId: 'data', pathOnHost: tempFile('data.img', Buffer.alloc(4096)), isRootDevice: false, isReadOnly: true, cacheType: 'Unsafe', ioEngine: 'Sync' },
      { driveId: 'root', pathOnHost: tempFile('root.img', Buffer.alloc(8192)), isRootDevice: true, isReadOnly: false, cacheType: 'Writeback', ioEngine: 'Async' },
    ],
    entropy: {},
    serialOutput: () => {},
    onReset: () => vmm.stop({ kind: 'reset' }),
  });
  vmm.parts.pio.insert({ read: () => {}, write: (_o, data) => { values.push(data.readUInt32LE(0)); } }, 0x80, 4, 'probe');
  const devices = vmm.devices;
  const cmdline = vmm.parts.memory.read(0x20000, 512).toString('latin1').split('\0')[0];
  assert.equal(cmdline, 'console=ttyS0 virtio_mmio.device=4K@0xc0001000:5 root=/dev/vda rw '
    + 'virtio_mmio.device=4K@0xc0002000:6 virtio_mmio.device=4K@0xc0003000:7');
  assert.deepEqual(devices.devices.map((d) => `${d.type}:${d.id}@${d.slot}/${d.gsi}`), ['block:root@0/5', 'block:data@1/6', 'rng:rng@2/7'], 'the root drive takes slot 0');
  vmm.start();
  assert.deepEqual(await vmm.waitForStop(), { kind: 'reset' });
  assert.deepEqual(values, [0x74726976], 'MagicValue "virt" read through the MMIO bus');
  await waitFor(() => devices.queueNotifications === 1, 'the ioeventfd notification');
  assert.equal(vmm.exitCounters.mmio, 1, 'only the MagicValue read exited; the notify did not');
  assert.deepEqual([...devices.metrics().keys()], ['block_root', 'block_data', 'entropy']);
  await vmm.close();
});

test('root device parameters and PUT-time file checks', () => {
  const base = { driveId: 'r', isRootDevice: true, cacheType: 'Unsafe', ioEngine: 'Sync' } as const;
  assert.equal(rootDeviceArgs({ ...base, isReadOnly: true }), 'root=/dev/vda ro');
  assert.equal(rootDeviceArgs({ ...base, isReadOnly: false, partuuid: '0eaa91a0-01' }), 'root=PARTUUID=0eaa91a0-01 rw');
  assert.throws(() => checkDriveFile({ ...base, isReadOnly: false, pathOnHost: '/nonexistent.img' }), /Cannot open the drive's backing file \/nonexistent.img: it does not exist/);
  assert.throws(() => checkDriveFile({ ...base, isReadOnly: false, socket: '/run/vhost.sock' }), /vhost-user drive/);
  checkDriveFile({ ...base, isReadOnly: true, pathOnHost: tempFile('ok.img', Buffer.alloc(512)) });
});
