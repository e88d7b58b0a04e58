import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory } from '../memory/guest-memory';
import { SparklerError } from '../errors';
import { KernelImageError, KernelPlacementError } from './errors';
import { loadElf, parseElf } from './elf';
import * as fs from 'node:fs';
import { makeElf, withFile } from './fixtures';
import { fileSource } from './image-source';

const MiB = 1024 * 1024;
const mem = (size = 16 * MiB) => GuestMemory.fromLayout([{ start: 0, size }]);
const text = Buffer.from('\x48\x31\xc0\xf4', 'latin1'); // xor rax, rax; hlt

test('loads PT_LOAD segments at p_paddr, zero-fills bss, entry = e_entry', () => {
  const m = mem();
  m.write(0x200000 + 4, Buffer.alloc(16, 0xff)); // garbage where the bss goes
  const image = makeElf([
    { paddr: 0x100000, data: text },
    { paddr: 0x200000, data: Buffer.from('data'), memsz: 0x1000 },
    { paddr: 0x300000, data: Buffer.from('not loaded'), type: 4 /* PT_NOTE */ },
  ], 0x100001);
  const k = loadElf(m, image);
  assert.deepEqual(k, { format: 'elf', entry: 0x100001, start: 0x100000, end: 0x201000 });
  assert.deepEqual(m.read(0x100000, 4), text);
  assert.equal(m.read(0x200000, 4).toString(), 'data');
  assert.deepEqual(m.read(0x200004, 16), Buffer.alloc(16), 'bss zeroed');
  assert.deepEqual(m.read(0x300000, 10), Buffer.alloc(10), 'non-PT_LOAD segments ignored');
});

function expectImageError(image: Buffer, pattern: RegExp): void {
  const m = mem();
  const before = m.read(0x100000, 64);
  assert.throws(() => loadElf(m, image), (err: unknown) => {
    assert.ok(err instanceof KernelImageError, `a KernelImageError, got ${String(err)}`);
    assert.ok(err instanceof SparklerError);
    assert.equal(err.code, 'EKERNELIMAGE');
    assert.match(err.message, /^The kernel image is not a valid ELF or bzImage: /);
    assert.match(err.message, pattern);
    return true;
  });
  assert.deepEqual(m.read(0x100000, 64), before, 'nothing written');
}

test('corrupt and truncated images get a clear KernelImageError and write nothing', () => {
  const good = makeElf([{ paddr: 0x100000, data: Buffer.alloc(256, 0x90) }]);
  const mod = (f: (b: Buffer) => void): Buffer => { const b = Buffer.from(good); f(b); return b; };
  expectImageError(good.subarray(0, 40), /too short for a 64-byte ELF header/);
  expectImageError(mod((b) => { b[1] = 0x46; }), /ELF magic/);
  expectImageError(mod((b) => { b[4] = 1; }), /32-bit ELF/);
  expectImageError(mod((b) => { b[5] = 2; }), /little-endian/);
  expectImageError(mod((b) => b.writeUInt16LE(1, 16)), /not an executable/);
  expectImageError(mod((b) => b.writeUInt16LE(183, 18)), /machine 183, not x86_64/);
  expectImageError(mod((b) => b.writeUInt16LE(32, 54)), /program headers are 32 bytes/);
  expectImageError(mod((b) => b.writeUInt16LE(0, 56)), /no program headers/);
  expectImageError(mod((b) => b.writeBigUInt64LE(0x100000n, 32)), /program header table .* outside/);
  expectImageError(mod((b) => b.writeBigUInt64LE(0xffff_ffff_ffff_0000n, 32)), /impossibly large/);
  expectImageError(good.subarray(0, good.length - 1), /segment 0 needs file bytes .* truncated/);
  expectImageError(mod((b) => b.writeBigUInt64LE(0x10n, 64 + 40)), /file size \(256\) larger than its memory size/);
  expectImageError(mod((b) => b.writeUInt32LE(2, 64)), /no loadable/);
  expectImageError(mod((b) => b.writeBigUInt64LE(0x500000n, 24)), /entry point 0x500000 is not inside/);
});

test('segments below 1 MiB or outside RAM are refused before anything is written', () => {
  const low = makeElf([{ paddr: 0x7000, data: text }]);
  assert.throws(() => loadElf(mem(), low), (e: unknown) => e instanceof KernelPlacementError && /below 0x100000/.test(e.message));
  const m = mem(4 * MiB);
  const big = makeElf([{ paddr: 0x100000, data: text }, { paddr: 0x300000, data: text, memsz: 2 * MiB }]);
  assert.throws(() => loadElf(m, big), /0x300000\.\.0x500000, which is not all RAM/);
  assert.deepEqual(m.read(0x100000, 4), Buffer.alloc(4), 'first segment not written either');
});

test('a segment may span two guest memory regions', () => {
  const m = GuestMemory.fromLayout([{ start: 0, size: 2 * MiB }, { start: 2 * MiB, size: 2 * MiB }]);
  const data = Buffer.alloc(0x2000, 0xab);
  loadElf(m, makeElf([{ paddr: 2 * MiB - 0x1000, data, memsz: 0x3000 }]));
  assert.equal(m.readU8(2 * MiB - 0x1000), 0xab);
  assert.equal(m.readU8(2 * MiB + 0xfff), 0xab);
  assert.equal(m.readU8(2 * MiB + 0x1000), 0);
});

test('parseElf reports only PT_LOAD segments', () => {
  const p = parseElf(makeElf([{ paddr: 0x100000, data: text }, { paddr: 0x400000, data: text, type: 6 }]));
  assert.equal(p.segments.length, 1);
  assert.equal(p.entry, 0x100000);
});

test('from a file, segments are read straight into guest memory and bss is zeroed', () => {
  const data = Buffer.alloc(0x3000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
  const image = makeElf([{ paddr: 0x100000, data: text }, { paddr: 0x200000, data, memsz: 0x5000 }], 0x100000);
  withFile(image, (fd) => {
    const m = mem();
    m.write(0x203000, Buffer.alloc(0x2000, 0xee)); // garbage where the bss goes
    const k = loadElf(m, fileSource(fd));
    assert.deepEqual(k, { format: 'elf', entry: 0x100000, start: 0x100000, end: 0x205000 });
    assert.deepEqual(m.read(0x100000, 4), text);
    assert.deepEqual(m.read(0x200000, 0x3000), data);
    assert.deepEqual(m.read(0x203000, 0x2000), Buffer.alloc(0x2000), 'bss zeroed');
  });
});

test('a file truncated in the middle of a segment is refused before anything is written', () => {
  const image = makeElf([{ paddr: 0x100000, data: Buffer.alloc(0x1000, 0x90) }, { paddr: 0x200000, data: Buffer.alloc(0x1000, 0xab) }]);
  const cut = image.subarray(0, image.length - 0x800); // half of segment 1 is missing
  withFile(cut, (fd) => {
    const m = mem();
    assert.throws(() => loadElf(m, fileSource(fd)), (err: unknown) =>
      err instanceof KernelImageError && /segment 1 needs file bytes 0x10b0\.\.0x20b0 but the file is only 6320 bytes; it may be truncated/.test(err.message));
    assert.deepEqual(m.read(0x100000, 16), Buffer.alloc(16), 'segment 0 not written either');
  });
});

test('a file cut short while it is read gives a KernelImageError naming the segment', () => {
  const image = makeElf([{ paddr: 0x100000, data: Buffer.alloc(0x1000, 0x90) }, { paddr: 0x200000, data: Buffer.alloc(0x1000, 0xab) }]);
  withFile(image, (fd, file) => {
    const src = fileSource(fd); // size taken now, before the cut
    fs.truncateSync(file, image.length - 0x800);
    assert.throws(() => loadElf(mem(), src), (err: unknown) =>
      err instanceof KernelImageError && /the file ended at byte 0x18b0, inside segment 1 \(file bytes 0x10b0\.\.0x20b0\); it was truncated while being read/.test(err.message));
  });
});

test('the program header table is read from the file wherever it lies', () => {
  // Move the table to the end of the file and point e_phoff at it.
  const image = makeElf([{ paddr: 0x100000, data: text }]);
  const moved = Buffer.concat([image, image.subarray(64, 64 + 56)]);
  moved.writeBigUInt64LE(BigInt(image.length), 32);
  moved.fill(0, 64, 64 + 56);
  withFile(moved, (fd) => {
    const m = mem();
    assert.equal(loadElf(m, fileSource(fd)).entry, 0x100000);
    assert.deepEqual(m.read(0x100000, 4), text);
  });
});
