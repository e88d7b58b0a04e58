/**
 * struct boot_params, "the zero page": the 4 KiB block whose address the kernel finds in %rsi.
 *
 * Offsets are from the Linux x86 boot protocol: Documentation/arch/x86/zero-page.rst (fields of
 * boot_params outside the setup header) and Documentation/arch/x86/boot.rst, "The Real-Mode
 * Kernel Header" (the setup header, which starts at 0x1f1 inside boot_params exactly as it
 * does in a bzImage file); arch/x86/include/uapi/asm/bootparam.h declares the same layout.
 */
import { SparklerError } from '../../errors';
import { E820Entry, E820_MAX_ENTRIES } from './e820';

export const BOOT_PARAMS_SIZE = 4096;

/** Byte offsets inside struct boot_params. */
export const BP = {
  /** zero-page.rst 070/008: physical address of the ACPI RSDP (0 = let the kernel scan for it). */
  acpiRsdpAddr: 0x070,
  /** zero-page.rst 0C0/004, 0C4/004, 0C8/004: high 32 bits of ramdisk_image, ramdisk_size, cmd_line_ptr. */
  extRamdiskImage: 0x0c0,
  extRamdiskSize: 0x0c4,
  extCmdLinePtr: 0x0c8,
  /** zero-page.rst 1E8/001: number of entries in e820_table. */
  e820Entries: 0x1e8,
  /** zero-page.rst 1EF/001: sentinel; must stay 0 or the kernel wipes fields it thinks a broken loader left behind. */
  sentinel: 0x1ef,
  /** boot.rst: the setup header begins at 0x1f1 (setup_sects). */
  setupHeader: 0x1f1,
  setupSects: 0x1f1,
  /** boot.rst 01FE/2: boot_flag, 0xAA55. */
  bootFlag: 0x1fe,
  /** boot.rst 0200/2: jump; its second byte + 0x202 is the end of the setup header. */
  jump: 0x200,
  /** boot.rst 0202/4: header, the magic "HdrS" (0x53726448). */
  header: 0x202,
  /** boot.rst 0206/2: version, (major << 8) + minor. */
  version: 0x206,
  /** boot.rst 0210/1: type_of_loader (0xFF = undefined loader). */
  typeOfLoader: 0x210,
  /** boot.rst 0211/1: loadflags (bit 0 LOADED_HIGH, bit 7 CAN_USE_HEAP). */
  loadflags: 0x211,
  /** boot.rst 0214/4: code32_start. */
  code32Start: 0x214,
  /** boot.rst 0218/4: ramdisk_image, the initrd load address. */
  ramdiskImage: 0x218,
  /** boot.rst 021C/4: ramdisk_size. */
  ramdiskSize: 0x21c,
  /** boot.rst 0224/2: heap_end_ptr (real-mode setup heap; unused by the 64-bit entry). */
  heapEndPtr: 0x224,
  /** boot.rst 0228/4: cmd_line_ptr, the command line's linear address. */
  cmdLinePtr: 0x228,
  /** boot.rst 022C/4: initrd_addr_max, the highest byte an initrd may occupy. */
  initrdAddrMax: 0x22c,
  /** boot.rst 0230/4: kernel_alignment. */
  kernelAlignment: 0x230,
  /** boot.rst 0234/1: relocatable_kernel. */
  relocatableKernel: 0x234,
  /** boot.rst 0235/1: min_alignment (a power of two). */
  minAlignment: 0x235,
  /** boot.rst 0236/2: xloadflags (bit 0 XLF_KERNEL_64: a 64-bit entry point at +0x200). */
  xloadflags: 0x236,
  /** boot.rst 0238/4: cmdline_size, the longest command line without its NUL. */
  cmdlineSize: 0x238,
  /** boot.rst 0250/8: setup_data, a linked list of extra data. */
  setupData: 0x250,
  /** boot.rst 0258/8: pref_address. */
  prefAddress: 0x258,
  /** boot.rst 0260/4: init_size, memory the kernel needs from its runtime start before it reads the memory map. */
  initSize: 0x260,
  /** zero-page.rst 290/040: edd_mbr_sig_buffer; the setup header can never reach beyond this. */
  eddMbrSigBuffer: 0x290,
  /** zero-page.rst 2D0/A00: e820_table, 128 entries of 20 bytes (u64 addr, u64 size, u32 type). */
  e820Table: 0x2d0,
} as const;

export const E820_ENTRY_SIZE = 20;
export const BOOT_FLAG_MAGIC = 0xaa55;
/** "HdrS" read as a little-endian u32. */
export const HDRS_MAGIC = 0x53726448;
export const LOADER_TYPE_UNDEFINED = 0xff;
/** Firecracker writes 16 MiB into kernel_alignment for an ELF kernel, which has no header of its own. */
export const DEFAULT_KERNEL_ALIGNMENT = 0x0100_0000;
export const LOADFLAG_LOADED_HIGH = 0x01;
export const LOADFLAG_CAN_USE_HEAP = 0x80;
export const XLF_KERNEL_64 = 0x01;
export const XLF_CAN_BE_LOADED_ABOVE_4G = 0x02;

export class BootParamsError extends SparklerError {
  constructor(message: string) {
    super('EBOOTPARAMS', message);
    this.name = 'BootParamsError';
  }
}

export interface BootParamsInput {
  /** Guest-physical address of the NUL-terminated command line. */
  cmdlineAddr: number;
  /** Length of the command line including its NUL (Firecracker writes this into cmdline_size). */
  cmdlineSize: number;
  e820: readonly E820Entry[];
  initrd?: { address: number; size: number };
  /** The bzImage's setup header (bytes from 0x1f1), copied in before Sparkler's own fields. */
  setupHeader?: Buffer;
  /** Where the ACPI RSDP is, once ACPI tables exist (a later issue); 0 or absent: not set. */
  acpiRsdpAddr?: number;
}

function u32(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 0 || v > 0xffff_ffff) {
    throw new BootParamsError(`The zero page field ${name} must fit in 32 bits, but the value is ${v}.`);
  }
  return v;
}

/** Build the 4 KiB zero page. Pure: the caller writes it to ZERO_PAGE_START. */
export function buildBootParams(input: BootParamsInput): Buffer {
  const bp = Buffer.alloc(BOOT_PARAMS_SIZE);
  if (input.setupHeader) {
    const max = BP.eddMbrSigBuffer - BP.setupHeader;
    if (input.setupHeader.length > max) {
      throw new BootParamsError(`The kernel's setup header is ${input.setupHeader.length} bytes, more than the ${max} bytes boot_params has room for.`);
    }
    input.setupHeader.copy(bp, BP.setupHeader);
  }
  bp.writeUInt8(LOADER_TYPE_UNDEFINED, BP.typeOfLoader);
  bp.writeUInt16LE(BOOT_FLAG_MAGIC, BP.bootFlag);
  bp.writeUInt32LE(HDRS_MAGIC, BP.header);
  bp.writeUInt32LE(u32('cmd_line_ptr', input.cmdlineAddr), BP.cmdLinePtr);
  bp.writeUInt32LE(u32('cmdline_size', input.cmdlineSize), BP.cmdlineSize);
  if (!input.setupHeader) {
    // An ELF vmlinux has no header to give its alignment; a bzImage's own value is kept.
    bp.writeUInt32LE(DEFAULT_KERNEL_ALIGNMENT, BP.kernelAlignment);
  }
  if (input.initrd) {
    bp.writeUInt32LE(u32('ramdisk_image', input.initrd.address), BP.ramdiskImage);
    bp.writeUInt32LE(u32('ramdisk_size', input.initrd.size), BP.ramdiskSize);
  }
  if (input.acpiRsdpAddr) {
    bp.writeBigUInt64LE(BigInt(input.acpiRsdpAddr), BP.acpiRsdpAddr);
  }
  if (input.e820.length > E820_MAX_ENTRIES) {
    throw new BootParamsError(`The e820 map has ${input.e820.length} entries; the zero page holds at most ${E820_MAX_ENTRIES}.`);
  }
  bp.writeUInt8(input.e820.length, BP.e820Entries);
  input.e820.forEach((e, i) => {
    const off = BP.e820Table + i * E820_ENTRY_SIZE;
    bp.writeBigUInt64LE(BigInt(e.addr), off);
    bp.writeBigUInt64LE(BigInt(e.size), off + 8);
    bp.writeUInt32LE(e.type, off + 16);
  });
  return bp;
}

/** Read the e820 table back out of a zero page (tests, diagnostics). */
export function parseE820(bp: Buffer): E820Entry[] {
  const n = bp.readUInt8(BP.e820Entries);
  const out: E820Entry[] = [];
  for (let i = 0; i < n; i++) {
    const off = BP.e820Table + i * E820_ENTRY_SIZE;
    out.push({ addr: Number(bp.readBigUInt64LE(off)), size: Number(bp.readBigUInt64LE(off + 8)), type: bp.readUInt32LE(off + 16) });
  }
  return out;
}
