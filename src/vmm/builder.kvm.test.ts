/**
 * Real-KVM tests of the whole build path (loader, boot protocol, long mode, irqchip, devices,
 * vCPU threads) with tiny 64-bit guests that run at speed on any KVM, PVM included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildMicroVm } from './builder';
import { DEFAULT_MACHINE_CONFIG } from '../config/machine-config';
import { kvmUnavailableReason } from '../testing/kvm-available';
import { tinyKernel } from '../testing/tiny-guests';
import { waitFor } from '../testing/wait';

const skip = kvmUnavailableReason();

function kernelFile(code?: Buffer): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-tiny-'));
  const file = path.join(dir, 'tiny.elf');
  fs.writeFileSync(file, tinyKernel(code));
  return file;
}

test('a tiny guest prints through the UART, writes the boot timer and resets through the i8042', { skip }, async () => {
  const output: Buffer[] = [];
  const bootTimes: string[] = [];
  const vmm = buildMicroVm({
    bootSource: { kernelImagePath: kernelFile(), bootArgs: 'console=ttyS0' },
    machineConfig: { ...DEFAULT_MACHINE_CONFIG, vcpuCount: 2 },
    serialOutput: (b) => output.push(Buffer.from(b)),
    onReset: () => vmm.stop({ kind: 'reset' }),
    bootTimer: { log: (line) => bootTimes.push(line) },
  });
  vmm.start();
  assert.deepEqual(await vmm.waitForStop(), { kind: 'reset' });
  assert.equal(Buffer.concat(output).toString(), 'OK\n');
  assert.equal(bootTimes.length, 1);
  assert.match(bootTimes[0], /^Guest-boot-time = +\d+ us \d+ ms, +\d+ CPU us \d+ CPU ms$/);
});

test('pause stops guest progress and resume continues it', { skip }, async () => {
  // 1: out %al,$0x80; inc %al; jmp 1b
  let writes = 0;
  const vmm = buildMicroVm({
    bootSource: { kernelImagePath: kernelFile(Buffer.from('e680fec0ebfa', 'hex')) },
    machineConfig: DEFAULT_MACHINE_CONFIG,
    serialOutput: () => {},
    onReset: () => vmm.stop({ kind: 'reset' }),
  });
  vmm.parts.pio.insert({ read: () => {}, write: () => { writes++; } }, 0x80, 1, 'counter');
  vmm.start();
  await waitFor(() => writes >= 5, 'the guest to run');
  await vmm.pause();
  assert.equal(vmm.state, 'Paused');
  const atPause = writes;
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(writes, atPause, 'no guest progress while paused');
  vmm.resume();
  assert.equal(vmm.state, 'Running');
  await waitFor(() => writes >= atPause + 5, 'progress after resume');
  vmm.stop();
  assert.deepEqual(await vmm.waitForStop(), { kind: 'requested' });
});

test('a missing kernel is named in the error', () => {
  assert.throws(
    () => buildMicroVm({
      bootSource: { kernelImagePath: '/nonexistent/vmlinux' },
      machineConfig: DEFAULT_MACHINE_CONFIG,
      serialOutput: () => {},
      onReset: () => {},
    }),
    /Cannot read the kernel image at \/nonexistent\/vmlinux: it does not exist/,
  );
});
