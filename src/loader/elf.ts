/**
 * Loader for an uncompressed 64-bit x86 Linux kernel (vmlinux): every PT_LOAD segment is copied
 * to its physical address p_paddr and zero-filled up to p_memsz; the entry point is e_entry
 * (a physical address in vmlinux: the linker script sets ENTRY(phys_startup_64)).
 * Layouts: System V ABI, "ELF-64 Object File Format" (Elf64_Ehdr 64 bytes, Elf64_Phdr 56 bytes).
 * Everything is checked before anything is written, so a bad image leaves guest memory alone.
 * Only the ELF header and the program header table are read into Buffers; each segment's file
 * bytes are read straight into guest memory (image-source.ts).
 */
import { GuestMemory } from '../memory/guest-memory';
import { HIGH_MEMORY_START } from '../arch/x86_64/layout';
import { KernelImageError, KernelPlacementError, hex } from './errors';
import { isRamRange, readIntoGuest, zeroGuest } from './guest-write';
import { ImageInput, readHead, readRange, toSource } from './image-source';
import { LoadedKernel, LoadOptions } from './types';

export const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
export const ELFCLASS64 = 2;
export const ELFDATA2LSB = 1;
export const EV_CURRENT = 1;
export const ET_EXEC = 2;
export const ET_DYN = 3;
export const EM_X86_64 = 62;
export const PT_LOAD = 1;
export const ELF64_EHDR_SIZE = 64;
export const ELF64_PHDR_SIZE = 56;

/** Offsets in Elf64_Ehdr. */
export const EHDR = {
  class: 4, data: 5, identVersion: 6, type: 16, machine: 18, version: 20,
  entry: 24, phoff: 32, phentsize: 54, phnum: 56,
} as const;
/** Offsets in Elf64_Phdr. */
export const PHDR = { type: 0, offset: 8, vaddr: 16, paddr: 24, filesz: 32, memsz: 40 } as const;

/** True when `head` (the image or its first bytes) starts with the ELF magic. */
export function isElf(head: Uint8Array): boolean {
  return head.length >= 4 && ELF_MAGIC.equals(head.subarray(0, 4));
}

/** A PT_LOAD segment; `index` is its place in the program header table. */
interface Segment { index: number; offset: number; paddr: number; filesz: number; memsz: number }

/** A u64 that must be a safe integer to be used as an offset or address. */
function u64(buf: Buffer, off: number, what: string): number {
  const v = buf.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new KernelImageError(`${what} (${hex(v)}) is impossibly large.`);
  return Number(v);
}

export function parseElf(input: ImageInput): { entry: number; segments: Segment[] } {
  const src = toSource(input);
  const size = src.size;
  if (size < ELF64_EHDR_SIZE) {
    throw new KernelImageError(`the file is ${size} bytes, too short for a 64-byte ELF header.`);
  }
  const image = readHead(src, ELF64_EHDR_SIZE);
  if (image.length < ELF64_EHDR_SIZE) throw new KernelImageError(`the file ended after ${image.length} bytes, inside the ELF header; it may be truncated.`);
  if (!isElf(image)) throw new KernelImageError('the ELF magic (0x7f "ELF") is missing.');
  if (image[EHDR.class] !== ELFCLASS64) {
    throw new KernelImageError(`it is a ${image[EHDR.class] === 1 ? '32-bit' : 'unknown-class'} ELF file; a 64-bit (ELFCLASS64) kernel is needed.`);
  }
  if (image[EHDR.data] !== ELFDATA2LSB) throw new KernelImageError('the ELF file is not little-endian.');
  const type = image.readUInt16LE(EHDR.type);
  if (type !== ET_EXEC && type !== ET_DYN) throw new KernelImageError(`the ELF file is not an executable (e_type ${type}).`);
  const machine = image.readUInt16LE(EHDR.machine);
  if (machine !== EM_X86_64) throw new KernelImageError(`the ELF file is for machine ${machine}, not x86_64 (62).`);
  const entry = u64(image, EHDR.entry, 'the entry point');
  const phoff = u64(image, EHDR.phoff, 'the program header offset');
  const phentsize = image.readUInt16LE(EHDR.phentsize);
  const phnum = image.readUInt16LE(EHDR.phnum);
  if (phentsize !== ELF64_PHDR_SIZE) {
    throw new KernelImageError(`program headers are ${phentsize} bytes each; ELF-64 program headers are ${ELF64_PHDR_SIZE}.`);
  }
  if (phnum === 0) throw new KernelImageError('the ELF file has no program headers.');
  if (phoff < ELF64_EHDR_SIZE || phoff + phnum * phentsize > size) {
    throw new KernelImageError(
      `the program header table (${phnum} entries at offset ${hex(phoff)}) lies outside the ${size}-byte file; the file may be truncated.`,
    );
  }
  const table = readRange(src, phoff, phnum * phentsize);
  if (table.length < phnum * phentsize) {
    throw new KernelImageError(`the file ended at byte ${hex(phoff + table.length)}, inside the program header table; it may be truncated.`);
  }
  const segments: Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const ph = i * phentsize;
    if (table.readUInt32LE(ph + PHDR.type) !== PT_LOAD) continue;
    const seg = {
      offset: u64(table, ph + PHDR.offset, `segment ${i}'s file offset`),
      paddr: u64(table, ph + PHDR.paddr, `segment ${i}'s physical address`),
      filesz: u64(table, ph + PHDR.filesz, `segment ${i}'s file size`),
      memsz: u64(table, ph + PHDR.memsz, `segment ${i}'s memory size`),
    };
    if (seg.filesz > seg.memsz) {
      throw new KernelImageError(`segment ${i} has a file size (${seg.filesz}) larger than its memory size (${seg.memsz}).`);
    }
    if (seg.offset + seg.filesz > size) {
      throw new KernelImageError(
        `segment ${i} needs file bytes ${hex(seg.offset)}..${hex(seg.offset + seg.filesz)} but the file is only ${size} bytes; it may be truncated.`,
      );
    }
    segments.push({ ...seg, index: i });
  }
  if (segments.length === 0) throw new KernelImageError('the ELF file has no loadable (PT_LOAD) segment.');
  if (!segments.some((s) => entry >= s.paddr && entry < s.paddr + s.memsz)) {
    throw new KernelImageError(`the entry point ${hex(entry)} is not inside any loadable segment.`);
  }
  return { entry, segments };
}

/** Validate `image` as a vmlinux, check it fits guest RAM above 1 MiB, then load it. */
export function loadElf(mem: GuestMemory, image: ImageInput, opts: LoadOptions = {}): LoadedKernel {
  const src = toSource(image);
  const { entry, segments } = parseElf(src);
  for (const s of segments) {
    if (s.paddr < HIGH_MEMORY_START) {
      throw new KernelPlacementError(
        `The kernel wants a segment at ${hex(s.paddr)}, below ${hex(HIGH_MEMORY_START)} where the boot structures live; a kernel must load at 1 MiB or above.`,
      );
    }
    if (!isRamRange(mem, s.paddr, s.memsz)) {
      throw new KernelPlacementError(
        `The kernel needs guest memory ${hex(s.paddr)}..${hex(s.paddr + s.memsz)}, which is not all RAM in this guest; give the guest more memory.`,
      );
    }
  }
  const start = Math.min(...segments.map((s) => s.paddr));
  const end = Math.max(...segments.map((s) => s.paddr + s.memsz));
  opts.beforeLoad?.(start, end);
  for (const s of segments) {
    const read = readIntoGuest(mem, s.paddr, src, s.offset, s.filesz);
    if (read < s.filesz) {
      // The size was checked above, so the file shrank while we read it.
      throw new KernelImageError(
        `the file ended at byte ${hex(s.offset + read)}, inside segment ${s.index} (file bytes ${hex(s.offset)}..${hex(s.offset + s.filesz)}); it was truncated while being read.`,
      );
    }
    zeroGuest(mem, s.paddr + s.filesz, s.memsz - s.filesz);
  }
  return {
    format: 'elf',
    entry,
    start,
    end,
  };
}
