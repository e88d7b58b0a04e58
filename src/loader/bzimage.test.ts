import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory } from '../memory/guest-memory';
import { KernelImageError, KernelPlacementError } from './errors';
import { loadBzImage, parseBzImageHeader, runtimeFootprint } from './bzimage';
import * as fs from 'node:fs';
import { makeBzImage, withFile } from './fixtures';
import { fileSource } from './image-source';

const MiB = 1024 * 1024;
const mem = (size = 64 * MiB) => GuestMemory.fromLayout([{ start: 0, size }]);

test('loads the protected-mode part at 1 MiB; entry is +0x200; setup header returned', () => {
  const payload = Buffer.alloc(0x1000, 0xcc);
  const image = makeBzImage({ setupSects: 4, payload });
  const m = mem();
  const k = loadBzImage(m, image);
  assert.equal(k.format, 'bzImage');
  assert.equal(k.entry, 0x100200);
  assert.equal(k.start, 0x100000);
  // The decompressor runs at pref_address (16 MiB) and needs init_size (4 MiB) there.
  assert.equal(k.end, 0x1400000);
  assert.deepEqual(m.read(0x100000, 0x1000), payload);
  assert.equal(m.readU8(0x100000 - 1), 0, 'setup code is not loaded');
  assert.ok(k.setupHeader);
  assert.equal(k.setupHeader.length, 0x26c - 0x1f1, 'header from 0x1f1 to 0x202 + byte at 0x201');
  assert.deepEqual(k.setupHeader, image.subarray(0x1f1, 0x26c));
  assert.equal(k.initrdAddrMax, 0x7fffffff);
  assert.equal(k.cmdlineMax, 2047);
});

test('setup_sects 0 means 4', () => {
  const payload = Buffer.from('payload');
  const image = makeBzImage({ setupSects: 0, payload });
  const m = mem();
  loadBzImage(m, image);
  assert.equal(m.read(0x100000, 7).toString(), 'payload');
  assert.equal(parseBzImageHeader(image).setupSects, 4);
});

function expectImageError(image: Buffer, pattern: RegExp): void {
  const m = mem();
  assert.throws(() => loadBzImage(m, image), (err: unknown) => {
    assert.ok(err instanceof KernelImageError, `a KernelImageError, got ${String(err)}`);
    assert.match(err.message, /^The kernel image is not a valid ELF or bzImage: /);
    assert.match(err.message, pattern);
    return true;
  });
  assert.equal(m.readU8(0x100000), 0, 'nothing written');
}

test('corrupt and truncated bzImages are refused with a clear message', () => {
  const good = makeBzImage();
  const mod = (f: (b: Buffer) => void): Buffer => { const b = Buffer.from(good); f(b); return b; };
  expectImageError(good.subarray(0, 0x100), /too short to hold a Linux boot header/);
  expectImageError(mod((b) => b.writeUInt16LE(0x1234, 0x1fe)), /boot flag at 0x1fe is 0x1234, not 0xaa55/);
  expectImageError(mod((b) => b.write('HdrX', 0x202, 'latin1')), /"HdrS" is missing/);
  expectImageError(mod((b) => b.writeUInt16LE(0x0206, 0x206)), /boot protocol 2\.06; Sparkler needs 2\.12/);
  expectImageError(mod((b) => b.writeUInt8(0, 0x211)), /zImage/);
  expectImageError(mod((b) => b.writeUInt16LE(0, 0x236)), /XLF_KERNEL_64/);
  expectImageError(mod((b) => b.writeUInt8(0x90, 0x201)), /setup header claims to end at 0x292/);
  expectImageError(good.subarray(0, 0x240), /shorter than its own setup header/);
  expectImageError(good.subarray(0, 5 * 512), /no protected-mode kernel after it/);
  expectImageError(mod((b) => b.writeUInt8(60, 0x1f1)), /setup_sects says the setup code takes 31232 bytes/);
});

test('a kernel that does not fit guest RAM gets a placement error', () => {
  const image = makeBzImage({ payload: Buffer.alloc(2 * MiB) });
  assert.throws(() => loadBzImage(mem(2 * MiB), image), (e: unknown) => e instanceof KernelPlacementError && /give the guest more memory/.test(e.message));
  const hungry = makeBzImage({ initSize: 64 * MiB });
  assert.throws(() => loadBzImage(mem(64 * MiB), hungry), /decompresses itself to 0x1000000\.\.0x5000000/);
});

test('runtime footprint follows boot.rst init_size rules', () => {
  const h = parseBzImageHeader(makeBzImage({ kernelAlignment: 0x200000, prefAddress: 0x1000000, initSize: 0x100000 }));
  assert.deepEqual(runtimeFootprint(h, 0x100000), { start: 0x1000000, end: 0x1100000 });
  assert.deepEqual(runtimeFootprint(h, 0x2100000), { start: 0x2200000, end: 0x2300000 }, 'aligned up when above pref_address');
  const fixed = parseBzImageHeader(makeBzImage({ relocatable: false, prefAddress: 0x2000000, initSize: 0x1000 }));
  assert.deepEqual(runtimeFootprint(fixed, 0x100000), { start: 0x2000000, end: 0x2001000 });
});

test('from a file, only the header is read into a Buffer; the payload goes straight to 1 MiB', () => {
  const payload = Buffer.alloc(0x3000);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 13) & 0xff;
  const image = makeBzImage({ payload });
  withFile(image, (fd) => {
    const m = mem();
    const k = loadBzImage(m, fileSource(fd));
    assert.equal(k.entry, 0x100200);
    assert.deepEqual(k.setupHeader, image.subarray(0x1f1, 0x26c));
    assert.deepEqual(m.read(0x100000, payload.length), payload);
  });
});

test('a bzImage file cut in the middle of its header or payload is refused', () => {
  const image = makeBzImage({ payload: Buffer.alloc(0x2000, 0xcc) });
  withFile(image.subarray(0, 0x240), (fd) => {
    assert.throws(() => loadBzImage(mem(), fileSource(fd)), /shorter than its own setup header/);
  });
  withFile(image, (fd, file) => {
    const src = fileSource(fd);
    fs.truncateSync(file, 5 * 512 + 0x1000);
    assert.throws(() => loadBzImage(mem(), src), (err: unknown) =>
      err instanceof KernelImageError && /the file ended at byte 0x1a00, inside the protected-mode kernel \(which should end at 0x2a00\); it was truncated while being read/.test(err.message));
  });
});
