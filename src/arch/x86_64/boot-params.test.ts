import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BOOT_PARAMS_SIZE, BP, BootParamsError, E820_ENTRY_SIZE, HDRS_MAGIC, buildBootParams, parseE820,
} from './boot-params';
import { E820_MAX_ENTRIES, e820ForMemSize } from './e820';
import { MiB } from './layout';

// Every offset below is pinned against the Linux x86 boot protocol. "boot.rst" is
// Documentation/arch/x86/boot.rst, table in "The Real-Mode Kernel Header" and the per-field
// "Offset/size" lines; "zero-page.rst" is Documentation/arch/x86/zero-page.rst.
test('boot_params offsets are those of the boot protocol', () => {
  assert.equal(BP.acpiRsdpAddr, 0x070); // zero-page.rst: 070/008 acpi_rsdp_addr
  assert.equal(BP.extRamdiskImage, 0x0c0); // zero-page.rst: 0C0/004 ext_ramdisk_image
  assert.equal(BP.extRamdiskSize, 0x0c4); // zero-page.rst: 0C4/004 ext_ramdisk_size
  assert.equal(BP.extCmdLinePtr, 0x0c8); // zero-page.rst: 0C8/004 ext_cmd_line_ptr
  assert.equal(BP.e820Entries, 0x1e8); // zero-page.rst: 1E8/001 e820_entries
  assert.equal(BP.sentinel, 0x1ef); // zero-page.rst: 1EF/001 sentinel
  assert.equal(BP.setupHeader, 0x1f1); // boot.rst: "examine the following header at offset 0x01f1"
  assert.equal(BP.setupSects, 0x1f1); // boot.rst: 01F1/1 setup_sects
  assert.equal(BP.bootFlag, 0x1fe); // boot.rst: 01FE/2 boot_flag, 0xAA55 magic number
  assert.equal(BP.jump, 0x200); // boot.rst: 0200/2 jump
  assert.equal(BP.header, 0x202); // boot.rst: 0202/4 header, magic signature "HdrS"
  assert.equal(BP.version, 0x206); // boot.rst: 0206/2 version
  assert.equal(BP.typeOfLoader, 0x210); // boot.rst: 0210/1 type_of_loader
  assert.equal(BP.loadflags, 0x211); // boot.rst: 0211/1 loadflags
  assert.equal(BP.code32Start, 0x214); // boot.rst: 0214/4 code32_start
  assert.equal(BP.ramdiskImage, 0x218); // boot.rst: 0218/4 ramdisk_image
  assert.equal(BP.ramdiskSize, 0x21c); // boot.rst: 021C/4 ramdisk_size
  assert.equal(BP.heapEndPtr, 0x224); // boot.rst: 0224/2 heap_end_ptr
  assert.equal(BP.cmdLinePtr, 0x228); // boot.rst: 0228/4 cmd_line_ptr
  assert.equal(BP.initrdAddrMax, 0x22c); // boot.rst: 022C/4 initrd_addr_max
  assert.equal(BP.kernelAlignment, 0x230); // boot.rst: 0230/4 kernel_alignment
  assert.equal(BP.relocatableKernel, 0x234); // boot.rst: 0234/1 relocatable_kernel
  assert.equal(BP.minAlignment, 0x235); // boot.rst: 0235/1 min_alignment
  assert.equal(BP.xloadflags, 0x236); // boot.rst: 0236/2 xloadflags
  assert.equal(BP.cmdlineSize, 0x238); // boot.rst: 0238/4 cmdline_size
  assert.equal(BP.setupData, 0x250); // boot.rst: 0250/8 setup_data
  assert.equal(BP.prefAddress, 0x258); // boot.rst: 0258/8 pref_address
  assert.equal(BP.initSize, 0x260); // boot.rst: 0260/4 init_size
  assert.equal(BP.eddMbrSigBuffer, 0x290); // zero-page.rst: 290/040 edd_mbr_sig_buffer
  assert.equal(BP.e820Table, 0x2d0); // zero-page.rst: 2D0/A00 e820_table
  // zero-page.rst: e820_table is 0xA00 bytes; struct boot_e820_entry is u64 addr, u64 size, u32 type (packed).
  assert.equal(E820_ENTRY_SIZE, 20);
  assert.equal(E820_MAX_ENTRIES * E820_ENTRY_SIZE, 0xa00);
  assert.equal(HDRS_MAGIC, 0x53726448); // boot.rst: "HdrS" (0x53726448)
  assert.equal(Buffer.from('HdrS', 'latin1').readUInt32LE(0), HDRS_MAGIC);
  assert.equal(BOOT_PARAMS_SIZE, 4096); // boot.rst: "boot_params proper is limited to 4096 bytes"
});

test('zero page for an ELF kernel: magic, loader type, cmdline, alignment, e820', () => {
  const e820 = e820ForMemSize(256 * MiB);
  const bp = buildBootParams({ cmdlineAddr: 0x20000, cmdlineSize: 42, e820 });
  assert.equal(bp.length, 4096);
  assert.equal(bp.readUInt16LE(0x1fe), 0xaa55);
  assert.equal(bp.readUInt32LE(0x202), HDRS_MAGIC);
  assert.equal(bp.readUInt8(0x210), 0xff);
  assert.equal(bp.readUInt32LE(0x228), 0x20000);
  assert.equal(bp.readUInt32LE(0x238), 42);
  assert.equal(bp.readUInt32LE(0x230), 0x0100_0000);
  assert.equal(bp.readUInt32LE(0x218), 0);
  assert.equal(bp.readUInt32LE(0x21c), 0);
  assert.equal(bp.readUInt8(0x1ef), 0, 'sentinel stays 0');
  assert.equal(bp.readUInt8(0x1e8), e820.length);
  assert.deepEqual(parseE820(bp), e820);
  // Second entry written by hand at 0x2d0 + 20: the reserved EBDA.
  assert.equal(bp.readBigUInt64LE(0x2d0 + 20), 0x9fc00n);
  assert.equal(bp.readBigUInt64LE(0x2d0 + 28), 0x400n);
  assert.equal(bp.readUInt32LE(0x2d0 + 36), 2);
});

test('initrd and ACPI RSDP go where the protocol says', () => {
  const bp = buildBootParams({ cmdlineAddr: 0x20000, cmdlineSize: 1, e820: [], initrd: { address: 0x7000000, size: 12345 }, acpiRsdpAddr: 0xe0000 });
  assert.equal(bp.readUInt32LE(0x218), 0x7000000);
  assert.equal(bp.readUInt32LE(0x21c), 12345);
  assert.equal(bp.readBigUInt64LE(0x70), 0xe0000n);
});

test('a bzImage setup header is copied at 0x1f1, then Sparkler fields override it', () => {
  const hdr = Buffer.alloc(0x26c - 0x1f1, 0x11);
  hdr.writeUInt32LE(0x200000, 0x230 - 0x1f1); // kernel's own kernel_alignment is kept
  const bp = buildBootParams({ cmdlineAddr: 0x20000, cmdlineSize: 10, e820: [], setupHeader: hdr });
  assert.equal(bp.readUInt8(0x1f1), 0x11);
  assert.equal(bp.readUInt8(0x26b), 0x11);
  assert.equal(bp.readUInt8(0x26c), 0);
  assert.equal(bp.readUInt8(0x1f0), 0);
  assert.equal(bp.readUInt8(0x1ef), 0, 'the sentinel before the header is untouched');
  assert.equal(bp.readUInt32LE(0x230), 0x200000);
  assert.equal(bp.readUInt8(0x210), 0xff);
  assert.equal(bp.readUInt32LE(0x228), 0x20000);
  assert.throws(() => buildBootParams({ cmdlineAddr: 0, cmdlineSize: 0, e820: [], setupHeader: Buffer.alloc(0xa0) }), BootParamsError);
});

test('limits: 128 e820 entries, 32-bit pointers', () => {
  const many = Array.from({ length: 129 }, (_, i) => ({ addr: i * 4096, size: 4096, type: 1 }));
  assert.throws(() => buildBootParams({ cmdlineAddr: 0x20000, cmdlineSize: 1, e820: many }), /at most 128/);
  assert.doesNotThrow(() => buildBootParams({ cmdlineAddr: 0x20000, cmdlineSize: 1, e820: many.slice(0, 128) }));
  assert.throws(() => buildBootParams({ cmdlineAddr: 0x1_0000_0000, cmdlineSize: 1, e820: [] }), /32 bits/);
});
