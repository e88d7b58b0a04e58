/**
 * Real-KVM tests of the whole build path (loader, boot protocol, long mode, irqchip, devices,
 * vCPU threads) with tiny 64-bit guests that run at speed on any KVM, PVM included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildMicroVm } from './builder';
import { DEFAULT_MACHINE_CONFIG } from '../config/machine-config';
import { kvmUnavailableReason } from '../testing/kvm-available';
import { BP } from '../arch/x86_64/boot-params';
import { ZERO_PAGE_START } from '../arch/x86_64/layout';
import { detectKvmHost } from '../host/kvm-host';
import { makeElf } from '../loader/fixtures';
import { HELLO_BOOT_TIMER_RESET, tinyKernel } from '../testing/tiny-guests';
import { waitFor } from '../testing/wait';
import { tempDir } from '../testing/temp-dir';

const skip = kvmUnavailableReason();

function hostFile(bytes: Buffer, name: string): string {
  const dir = tempDir('sparkler-tiny-');
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

function kernelFile(code?: Buffer): string {
  return hostFile(tinyKernel(code), 'tiny.elf');
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

test('the initrd file is read into guest memory at the place the zero page gives', { skip }, async () => {
  const initrd = Buffer.alloc(3 * 4096 + 123);
  for (let i = 0; i < initrd.length; i++) initrd[i] = (i * 29 + 1) & 0xff;
  const vmm = buildMicroVm({
    bootSource: { kernelImagePath: kernelFile(), initrdPath: hostFile(initrd, 'initrd.cpio') },
    machineConfig: DEFAULT_MACHINE_CONFIG,
    serialOutput: () => {},
    onReset: () => vmm.stop({ kind: 'reset' }),
  });
  const mem = vmm.parts.memory;
  const address = mem.readU32(ZERO_PAGE_START + BP.ramdiskImage);
  assert.equal(mem.readU32(ZERO_PAGE_START + BP.ramdiskSize), initrd.length);
  assert.equal(address % 4096, 0);
  assert.deepEqual(mem.read(address, initrd.length), initrd);
  vmm.start();
  assert.deepEqual(await vmm.waitForStop(), { kind: 'reset' });
});

test('a directory given as kernel or initrd is refused with the file named', () => {
  const dir = tempDir('sparkler-dir-');
  const base = { machineConfig: DEFAULT_MACHINE_CONFIG, serialOutput: () => {}, onReset: () => {} };
  assert.throws(() => buildMicroVm({ ...base, bootSource: { kernelImagePath: dir } }), new RegExp(`Cannot read the kernel image at ${dir}: it is a directory`));
  assert.throws(() => buildMicroVm({ ...base, bootSource: { kernelImagePath: kernelFile(), initrdPath: dir } }), /Cannot read the initrd at .*: it is a directory/);
});

const notPvm = skip ?? (detectKvmHost().kind === 'pvm' ? undefined : 'the host is not PVM');

test('on PVM, a Linux kernel without PVM symbols is refused; one with them (found across the read chunks) is not', { skip: notPvm }, async () => {
  const saved = process.env.SPARKLER_ALLOW_PVM_STOCK_KERNEL;
  delete process.env.SPARKLER_ALLOW_PVM_STOCK_KERNEL;
  try {
    const rodata = Buffer.alloc(2 * 1024 * 1024);
    rodata.write('Linux version 6.1.0 (tiny)', 0x1000, 'latin1');
    const stock = makeElf([{ paddr: 0x100_0000, data: HELLO_BOOT_TIMER_RESET }, { paddr: 0x120_0000, data: rodata }], 0x100_0000);
    const base = { machineConfig: DEFAULT_MACHINE_CONFIG, serialOutput: () => {} };
    assert.throws(() => buildMicroVm({ ...base, onReset: () => {}, bootSource: { kernelImagePath: hostFile(stock, 'vmlinux') } }), /Refusing to boot .*vmlinux on this host/);

    // The symbol straddles the 1 MiB border between two chunks of the search (inside the second segment's bytes).
    stock.write('pvm_early_setup', 1024 * 1024 - 5, 'latin1');
    const vmm = buildMicroVm({ ...base, onReset: () => vmm.stop({ kind: 'reset' }), bootSource: { kernelImagePath: hostFile(stock, 'vmlinux') } });
    vmm.start();
    assert.deepEqual(await vmm.waitForStop(), { kind: 'reset' });
  } finally {
    if (saved !== undefined) process.env.SPARKLER_ALLOW_PVM_STOCK_KERNEL = saved;
  }
});

/** A started one-vCPU VM running `code`, with its console output gathered. */
function consoleVm(code: Buffer): { vmm: ReturnType<typeof buildMicroVm>; output: Buffer[] } {
  const output: Buffer[] = [];
  const vmm = buildMicroVm({
    bootSource: { kernelImagePath: kernelFile(code) },
    machineConfig: DEFAULT_MACHINE_CONFIG,
    serialOutput: (b) => output.push(Buffer.from(b)),
    onReset: () => vmm.stop({ kind: 'reset' }),
  });
  vmm.start();
  return { vmm, output };
}

test('console output of a running guest is written in a few batches, without waiting for an exit or stop', { skip }, async () => {
  // mov $0x3f8,%dx; mov $256,%ecx; 1: mov $'x',%al; out %al,(%dx); loop 1b; 2: jmp 2b
  const { vmm, output } = consoleVm(Buffer.from('66baf803b900010000b078eee2fbebfe', 'hex'));
  try {
    await waitFor(() => Buffer.concat(output).length >= 256, 'the 256 bytes, flushed by the timer while the guest spins');
    assert.equal(Buffer.concat(output).toString(), 'x'.repeat(256));
    assert.ok(output.length <= 64, `256 one-byte exits reached the sink in ${output.length} writes`);
  } finally {
    vmm.stop();
    await vmm.waitForStop();
  }
});

test('console output still held when the VM stops is flushed by the stop', { skip }, async () => {
  const output: Buffer[] = [];
  const vmm = buildMicroVm({
    bootSource: { kernelImagePath: kernelFile() },
    machineConfig: DEFAULT_MACHINE_CONFIG,
    serialOutput: (b) => output.push(Buffer.from(b)),
    onReset: () => vmm.stop({ kind: 'reset' }),
    serialFlushDelayMs: 60_000, // only the stop can flush "OK\n" in time
  });
  vmm.start();
  assert.deepEqual(await vmm.waitForStop(), { kind: 'reset' });
  assert.deepEqual(output.map(String), ['OK\n']);
});

test('a guest polling the UART gets its characters out in order, the THR writes queued without exits where KVM can', { skip }, async () => {
  // mov cl,'a'; 1: mov dx,0x3fd; in al,dx (LSR); mov dx,0x3f8; mov al,cl; out dx,al (THR);
  // inc cl; cmp cl,'z'+1; jne 1b; then reset through the i8042 (mov al,0xfe; out 0x64,al); hlt
  const { vmm, output } = consoleVm(Buffer.from('b16166bafd03ec66baf80388c8eefec180f97b75edb0fee664f4ebfd', 'hex'));
  assert.deepEqual(await vmm.waitForStop(), { kind: 'reset' });
  assert.equal(Buffer.concat(output).toString(), 'abcdefghijklmnopqrstuvwxyz');
  // 26 LSR reads and the reset always exit; the 26 THR writes only without coalesced PIO.
  const exits = vmm.exitCounters.io;
  if (vmm.parts.queuedWrites) assert.ok(exits <= 28, `${exits} port exits: the THR writes should have been queued`);
  else assert.ok(exits >= 53, `${exits} port exits without coalesced PIO`);
});
