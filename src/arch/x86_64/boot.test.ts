import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory } from '../../memory/guest-memory';
import { KernelCmdline } from '../../loader/cmdline';
import { loadKernel } from '../../loader/kernel';
import { makeBzImage, makeElf } from '../../loader/fixtures';
import { configureBoot } from './boot';
import { BP, HDRS_MAGIC, parseE820 } from './boot-params';
import { e820ForMemSize } from './e820';
import { MiB, memoryRegions } from './layout';
import { applyLongMode, resetSregs } from './sregs';
import { bootRegs } from './regs';

const guest = (size = 64 * MiB) => GuestMemory.fromLayout(memoryRegions(size));

test('ELF boot: cmdline, zero page, e820, MP table, GDT and page tables in place', () => {
  const mem = guest();
  const kernel = loadKernel(mem, makeElf([{ paddr: 0x1000000, data: Buffer.alloc(0x1000, 0x90) }]));
  const cmdline = new KernelCmdline().append('console=ttyS0 reboot=k panic=1');
  const setup = configureBoot(mem, { kernel, cmdline, vcpuCount: 2 });

  assert.equal(setup.entry, 0x1000000);
  assert.equal(setup.zeroPage, 0x7000);
  assert.equal(mem.read(0x20000, setup.cmdline.size).toString('latin1'), 'console=ttyS0 reboot=k panic=1\0');

  const zp = mem.read(0x7000, 4096);
  assert.equal(zp.readUInt16LE(BP.bootFlag), 0xaa55);
  assert.equal(zp.readUInt32LE(BP.header), HDRS_MAGIC);
  assert.equal(zp.readUInt8(BP.typeOfLoader), 0xff);
  assert.equal(zp.readUInt32LE(BP.cmdLinePtr), 0x20000);
  assert.equal(zp.readUInt32LE(BP.cmdlineSize), setup.cmdline.size);
  assert.equal(zp.readUInt32LE(BP.ramdiskImage), 0);
  assert.deepEqual(parseE820(zp), e820ForMemSize(64 * MiB));
  assert.deepEqual(setup.e820, e820ForMemSize(64 * MiB));

  assert.equal(mem.read(0x9fc00, 4).toString('latin1'), '_MP_');
  assert.equal(setup.mpTable.address, 0x9fc00);
  assert.equal(mem.readU64(0x508), 0x00af_9b00_0000_ffffn, 'GDT code entry');
  assert.equal(mem.readU64(0x9000), 0xa003n, 'PML4');

  const sregs = applyLongMode(resetSregs(), setup.longMode);
  assert.equal(sregs.cr3, 0x9000n);
  const regs = bootRegs(setup.entry, setup.zeroPage);
  assert.equal(regs.rsi, 0x7000n);
  assert.equal(regs.rip, 0x1000000n);
});

test('bzImage boot with initrd: setup header copied, ramdisk fields set, initrd above the kernel', () => {
  const mem = guest();
  const image = makeBzImage({ cmdlineSize: 255 });
  const kernel = loadKernel(mem, image);
  const initrd = Buffer.alloc(100_000, 0x42);
  const setup = configureBoot(mem, { kernel, cmdline: 'console=ttyS0', initrd, vcpuCount: 1 });
  assert.equal(setup.entry, 0x100200);
  const zp = mem.read(0x7000, 4096);
  assert.equal(zp.readUInt16LE(BP.version), 0x020f, 'header copied from the image');
  assert.equal(zp.readUInt8(BP.loadflags), 0x01, 'kernel loadflags kept');
  assert.equal(zp.readUInt32LE(BP.kernelAlignment), 0x200000, 'kernel_alignment from the image kept');
  assert.equal(zp.readUInt8(BP.typeOfLoader), 0xff);
  assert.equal(zp.readUInt32LE(BP.cmdLinePtr), 0x20000);
  assert.ok(setup.initrd);
  assert.equal(zp.readUInt32LE(BP.ramdiskImage), setup.initrd.address);
  assert.equal(zp.readUInt32LE(BP.ramdiskSize), 100_000);
  assert.ok(setup.initrd.address >= kernel.end);
  assert.equal(setup.initrd.address + 100_000 <= 64 * MiB, true);
  assert.equal(mem.readU8(setup.initrd.address), 0x42);
});

test('ACPI hook: its RSDP address lands in the zero page', () => {
  const mem = guest();
  const kernel = loadKernel(mem, makeElf([{ paddr: 0x1000000, data: Buffer.from('k') }]));
  let called = false;
  const setup = configureBoot(mem, { kernel, cmdline: '', vcpuCount: 1, writeAcpiTables: () => { called = true; return 0xe0000; } });
  assert.ok(called);
  assert.equal(setup.acpiRsdp, 0xe0000);
  assert.equal(mem.read(0x7000, 4096).readBigUInt64LE(BP.acpiRsdpAddr), 0xe0000n);
});

test('a command line longer than the kernel accepts is refused', () => {
  const mem = guest();
  const kernel = loadKernel(mem, makeBzImage({ cmdlineSize: 16 }));
  assert.throws(() => configureBoot(mem, { kernel, cmdline: 'console=ttyS0 reboot=k', vcpuCount: 1 }), /at most 16 and would cut it short/);
});

test('too many vCPUs for the MP table is refused', () => {
  const mem = guest();
  const kernel = loadKernel(mem, makeElf([{ paddr: 0x1000000, data: Buffer.from('k') }]));
  assert.throws(() => configureBoot(mem, { kernel, cmdline: '', vcpuCount: 64 }), /at most 37 vCPUs/);
});
