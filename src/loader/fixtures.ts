/**
 * Tiny hand-made kernel images for tests (not used at run time): a minimal x86_64 ELF vmlinux
 * and a minimal bzImage, built field by field so tests can corrupt any one of them.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BP, HDRS_MAGIC } from '../arch/x86_64/boot-params';

/** Writes `bytes` to a new file in a new temporary folder and returns its path. */
export function tempFile(bytes: Uint8Array, name = 'image'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-image-'));
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

/** Runs `fn` with `bytes` open as a file (an fd), closing it afterwards. */
export function withFile<T>(bytes: Uint8Array, fn: (fd: number, file: string) => T): T {
  const file = tempFile(bytes);
  const fd = fs.openSync(file, 'r');
  try {
    return fn(fd, file);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
}

export interface ElfSegmentSpec {
  paddr: number;
  data: Buffer;
  memsz?: number;
  type?: number;
}

/** An ELF64 x86_64 executable with the given PT_LOAD segments (program headers right after the ELF header). */
export function makeElf(segments: ElfSegmentSpec[], entry: number = segments[0]?.paddr ?? 0): Buffer {
  const ehdr = 64;
  const phdr = 56;
  const dataStart = ehdr + phdr * segments.length;
  const total = dataStart + segments.reduce((n, s) => n + s.data.length, 0);
  const b = Buffer.alloc(total);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0); // magic, ELFCLASS64, ELFDATA2LSB, EV_CURRENT
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(62, 18); // EM_X86_64
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(BigInt(entry), 24);
  b.writeBigUInt64LE(BigInt(ehdr), 32); // e_phoff
  b.writeUInt16LE(ehdr, 52);
  b.writeUInt16LE(phdr, 54);
  b.writeUInt16LE(segments.length, 56);
  let data = dataStart;
  segments.forEach((s, i) => {
    const p = ehdr + i * phdr;
    b.writeUInt32LE(s.type ?? 1, p);
    b.writeUInt32LE(5, p + 4); // PF_R | PF_X
    b.writeBigUInt64LE(BigInt(data), p + 8);
    b.writeBigUInt64LE(BigInt(0xffffffff80000000n + BigInt(s.paddr)), p + 16);
    b.writeBigUInt64LE(BigInt(s.paddr), p + 24);
    b.writeBigUInt64LE(BigInt(s.data.length), p + 32);
    b.writeBigUInt64LE(BigInt(s.memsz ?? s.data.length), p + 40);
    b.writeBigUInt64LE(0x200000n, p + 48);
    s.data.copy(b, data);
    data += s.data.length;
  });
  return b;
}

export interface BzImageSpec {
  setupSects?: number;
  version?: number;
  loadflags?: number;
  xloadflags?: number;
  payload?: Buffer;
  initrdAddrMax?: number;
  cmdlineSize?: number;
  relocatable?: boolean;
  kernelAlignment?: number;
  prefAddress?: number;
  initSize?: number;
}

/** A bzImage: boot sector + setup sectors with a protocol 2.15 header, then the protected-mode payload. */
export function makeBzImage(spec: BzImageSpec = {}): Buffer {
  const setupSects = spec.setupSects ?? 4;
  const payload = spec.payload ?? Buffer.from('64-bit kernel payload', 'latin1');
  const setup = Buffer.alloc(((setupSects || 4) + 1) * 512);
  setup.writeUInt8(setupSects, BP.setupSects);
  setup.writeUInt16LE(0xaa55, BP.bootFlag);
  setup.writeUInt8(0xeb, BP.jump);
  setup.writeUInt8(0x6a, BP.jump + 1); // header ends at 0x202 + 0x6a = 0x26c (after kernel_info_offset)
  setup.writeUInt32LE(HDRS_MAGIC, BP.header);
  setup.writeUInt16LE(spec.version ?? 0x020f, BP.version);
  setup.writeUInt8(spec.loadflags ?? 0x01, BP.loadflags);
  setup.writeUInt32LE(0x100000, BP.code32Start);
  setup.writeUInt32LE(spec.initrdAddrMax ?? 0x7fffffff, BP.initrdAddrMax);
  setup.writeUInt32LE(spec.kernelAlignment ?? 0x200000, BP.kernelAlignment);
  setup.writeUInt8(spec.relocatable === false ? 0 : 1, BP.relocatableKernel);
  setup.writeUInt8(21, BP.minAlignment);
  setup.writeUInt16LE(spec.xloadflags ?? 0x0003, BP.xloadflags);
  setup.writeUInt32LE(spec.cmdlineSize ?? 2047, BP.cmdlineSize);
  setup.writeBigUInt64LE(BigInt(spec.prefAddress ?? 0x1000000), BP.prefAddress);
  setup.writeUInt32LE(spec.initSize ?? 0x400000, BP.initSize);
  return Buffer.concat([setup, payload]);
}
