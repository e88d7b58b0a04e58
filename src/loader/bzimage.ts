/**
 * Loader for a bzImage: the real-mode setup code is skipped (we enter in 64-bit mode), the
 * protected-mode part (everything after the (setup_sects + 1) * 512 bytes of boot sector and
 * setup) is loaded at 1 MiB, and the entry is that load address + 0x200, the 64-bit entry
 * point (boot.rst, "64-bit Boot Protocol"). The setup header is returned for the zero page.
 *
 * We require boot protocol 2.12 or newer: xloadflags (0x236) first appears in 2.12, and its
 * XLF_KERNEL_64 bit is the kernel's only statement that the 64-bit entry at +0x200 exists.
 * (2.12 is Linux 3.8; every 64-bit kernel worth booting is newer.)
 *
 * Only the setup header is read into a Buffer; the protected-mode part is read from the image
 * straight into guest memory.
 */
import { GuestMemory } from '../memory/guest-memory';
import { HIGH_MEMORY_START } from '../arch/x86_64/layout';
import {
  BOOT_FLAG_MAGIC, BP, HDRS_MAGIC, LOADFLAG_LOADED_HIGH, XLF_KERNEL_64,
} from '../arch/x86_64/boot-params';
import { KernelImageError, KernelPlacementError, hex } from './errors';
import { isRamRange, readIntoGuest } from './guest-write';
import { ImageInput, readHead, toSource } from './image-source';
import { LoadedKernel, LoadOptions } from './types';

export const BZIMAGE_MIN_PROTOCOL = 0x020c;
export const SECTOR_SIZE = 512;
export const ENTRY_64_OFFSET = 0x200;
/**
 * The setup header ends at 0x202 + the jump's signed 8-bit offset (boot.rst, "jump"), so it can
 * never reach past 0x202 + 0x7f; boot.rst calls it "permanently limited to 144 bytes".
 */
export const SETUP_HEADER_END_MAX = 0x202 + 0x7f;
/** We read fields up to cmdline_size (0x238/4), all present from protocol 2.06. */
const SETUP_HEADER_END_MIN = BP.cmdlineSize + 4;

/** True when `head` (the image or its first bytes, at least 0x206) carries "HdrS" at 0x202. */
export function looksLikeBzImage(head: Buffer): boolean {
  return head.length >= BP.header + 4 && head.readUInt32LE(BP.header) === HDRS_MAGIC;
}

export interface BzImageHeader {
  version: number;
  setupSects: number;
  loadflags: number;
  xloadflags: number;
  initrdAddrMax: number;
  cmdlineSize: number;
  relocatable: boolean;
  kernelAlignment: number;
  prefAddress: number;
  initSize: number;
  /** Bytes from 0x1f1 to the end of the header (0x202 + the byte at 0x201). */
  setupHeader: Buffer;
}

export function parseBzImageHeader(input: ImageInput): BzImageHeader {
  const src = toSource(input);
  if (src.size < BP.version + 2) {
    throw new KernelImageError(`the file is ${src.size} bytes, too short to hold a Linux boot header.`);
  }
  // Everything read below lies in the first SETUP_HEADER_END_MAX bytes.
  const image = readHead(src, SETUP_HEADER_END_MAX);
  if (image.length < Math.min(src.size, SETUP_HEADER_END_MAX)) {
    throw new KernelImageError(`the file ended after ${image.length} bytes, inside the boot sector; it may be truncated.`);
  }
  const bootFlag = image.readUInt16LE(BP.bootFlag);
  if (bootFlag !== BOOT_FLAG_MAGIC) {
    throw new KernelImageError(`the boot flag at 0x1fe is ${hex(bootFlag)}, not 0xaa55.`);
  }
  if (image.readUInt32LE(BP.header) !== HDRS_MAGIC) {
    throw new KernelImageError('the boot header magic "HdrS" is missing at 0x202.');
  }
  const version = image.readUInt16LE(BP.version);
  if (version < BZIMAGE_MIN_PROTOCOL) {
    throw new KernelImageError(
      `it uses boot protocol ${version >> 8}.${(version & 0xff).toString().padStart(2, '0')}; Sparkler needs 2.12 or newer (Linux 3.8+) to find the 64-bit entry point.`,
    );
  }
  const headerEnd = 0x202 + image.readUInt8(BP.jump + 1);
  if (headerEnd > SETUP_HEADER_END_MAX || headerEnd < SETUP_HEADER_END_MIN) {
    throw new KernelImageError(
      `the setup header claims to end at ${hex(headerEnd)}, outside ${hex(SETUP_HEADER_END_MIN)}..${hex(SETUP_HEADER_END_MAX)}.`,
    );
  }
  if (src.size < headerEnd) {
    throw new KernelImageError(`the file is ${src.size} bytes, shorter than its own setup header (which ends at ${hex(headerEnd)}); it may be truncated.`);
  }
  const loadflags = image.readUInt8(BP.loadflags);
  if (!(loadflags & LOADFLAG_LOADED_HIGH)) {
    throw new KernelImageError('it is a zImage (LOADED_HIGH is clear in loadflags); only bzImage kernels load at 1 MiB.');
  }
  const xloadflags = image.readUInt16LE(BP.xloadflags);
  if (!(xloadflags & XLF_KERNEL_64)) {
    throw new KernelImageError('it has no 64-bit entry point (XLF_KERNEL_64 is clear in xloadflags); it is probably a 32-bit kernel.');
  }
  const setupSects = image.readUInt8(BP.setupSects) || 4; // boot.rst: 0 means 4
  return {
    version,
    setupSects,
    loadflags,
    xloadflags,
    initrdAddrMax: image.readUInt32LE(BP.initrdAddrMax),
    cmdlineSize: image.readUInt32LE(BP.cmdlineSize),
    relocatable: image.readUInt8(BP.relocatableKernel) !== 0,
    kernelAlignment: image.readUInt32LE(BP.kernelAlignment),
    prefAddress: headerEnd >= BP.prefAddress + 8 ? Number(image.readBigUInt64LE(BP.prefAddress)) : 0,
    initSize: headerEnd >= BP.initSize + 4 ? image.readUInt32LE(BP.initSize) : 0,
    setupHeader: Buffer.from(image.subarray(BP.setupHeader, headerEnd)),
  };
}

/**
 * Where the kernel will run once it has decompressed itself, and how much it needs there
 * (boot.rst, init_size: runtime_start = align_up(load_address, kernel_alignment) for a
 * relocatable kernel, pref_address otherwise; the x86_64 decompressor also never goes below
 * pref_address, its LOAD_PHYSICAL_ADDR).
 */
export function runtimeFootprint(h: BzImageHeader, loadAddr: number): { start: number; end: number } {
  const align = h.kernelAlignment > 0 ? h.kernelAlignment : 1;
  const aligned = Math.ceil(loadAddr / align) * align;
  const start = h.relocatable ? Math.max(aligned, h.prefAddress) : h.prefAddress || loadAddr;
  return { start, end: start + h.initSize };
}

export function loadBzImage(mem: GuestMemory, image: ImageInput, opts: LoadOptions = {}): LoadedKernel {
  const src = toSource(image);
  const h = parseBzImageHeader(src);
  const setupBytes = (h.setupSects + 1) * SECTOR_SIZE;
  if (src.size <= setupBytes) {
    throw new KernelImageError(
      `setup_sects says the setup code takes ${setupBytes} bytes, but the file is only ${src.size} bytes; there is no protected-mode kernel after it.`,
    );
  }
  const payloadLength = src.size - setupBytes;
  const load = HIGH_MEMORY_START;
  if (!isRamRange(mem, load, payloadLength)) {
    throw new KernelPlacementError(
      `The kernel needs guest memory ${hex(load)}..${hex(load + payloadLength)}, which is not all RAM in this guest; give the guest more memory.`,
    );
  }
  const runtime = runtimeFootprint(h, load);
  if (h.initSize > 0 && !isRamRange(mem, runtime.start, runtime.end - runtime.start)) {
    throw new KernelPlacementError(
      `The kernel decompresses itself to ${hex(runtime.start)}..${hex(runtime.end)} (init_size ${h.initSize} bytes), which is not all RAM in this guest; give the guest more memory.`,
    );
  }
  const end = Math.max(load + payloadLength, h.initSize > 0 ? runtime.end : 0);
  opts.beforeLoad?.(load, end);
  const read = readIntoGuest(mem, load, src, setupBytes, payloadLength);
  if (read < payloadLength) {
    throw new KernelImageError(
      `the file ended at byte ${hex(setupBytes + read)}, inside the protected-mode kernel (which should end at ${hex(src.size)}); it was truncated while being read.`,
    );
  }
  return {
    format: 'bzImage',
    entry: load + ENTRY_64_OFFSET,
    start: load,
    end,
    setupHeader: h.setupHeader,
    initrdAddrMax: h.initrdAddrMax || undefined,
    cmdlineMax: h.cmdlineSize || undefined,
  };
}
