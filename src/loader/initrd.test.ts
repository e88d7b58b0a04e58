import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory } from '../memory/guest-memory';
import { memoryRegions } from '../arch/x86_64/layout';
import { InitrdError } from './errors';
import * as fs from 'node:fs';
import { withFile } from './fixtures';
import { fileSource } from './image-source';
import { initrdAddress, isGuestView, loadInitrd } from './initrd';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

test('placed page-aligned at the top of low RAM', () => {
  const m = GuestMemory.fromLayout([{ start: 0, size: 64 * MiB }]);
  const data = Buffer.alloc(10_000, 0x5a);
  const p = loadInitrd(m, data, { end: 0x200000 });
  assert.equal(p.size, 10_000);
  assert.equal(p.address % 4096, 0);
  assert.equal(p.address, 64 * MiB - 12288);
  assert.deepEqual(m.read(p.address, 10_000), data);
});

test('stays below initrd_addr_max and below the MMIO gap', () => {
  // A fake 4 GiB guest layout: only the address arithmetic is exercised (no write).
  const regions = memoryRegions(4 * GiB).map((r) => ({ start: r.start, bytes: { length: r.size } as Buffer, hostAddress: 0n }));
  const m = { regions } as unknown as GuestMemory;
  assert.equal(initrdAddress(m, 4096).address, 0xc000_0000 - 4096, 'top of low RAM, not above 4 GiB');
  assert.equal(initrdAddress(m, 4096, { end: 0x200000, initrdAddrMax: 0x7fffffff }).address, 0x8000_0000 - 4096);
  assert.equal(initrdAddress(m, 100, { end: 0x200000, initrdAddrMax: 0x37ffffff }).address, 0x37fff000);
});

test('an initrd that does not fit above the kernel is refused with the numbers', () => {
  const m = GuestMemory.fromLayout([{ start: 0, size: 8 * MiB }]);
  assert.throws(() => loadInitrd(m, Buffer.alloc(7 * MiB), { end: 2 * MiB }), (e: unknown) =>
    e instanceof InitrdError && e.code === 'EINITRD'
    && /7340032 bytes, but only 6291456 bytes of low memory are free/.test(e.message));
  assert.throws(() => loadInitrd(m, Buffer.alloc(0)), /empty/);
  assert.throws(() => initrdAddress(m, 9 * MiB), InitrdError);
});

test('an initrd may cross the 2 GiB region split', () => {
  // Two small regions stand in for the split; the initrd straddles their border.
  const m = GuestMemory.fromLayout([{ start: 0, size: 4 * MiB }, { start: 4 * MiB, size: 4096 }]);
  const p = loadInitrd(m, Buffer.alloc(8192, 1));
  assert.equal(p.address, 4 * MiB - 4096);
  assert.equal(m.readU8(4 * MiB - 4096), 1);
  assert.equal(m.readU8(4 * MiB + 4095), 1);
});

test('from a file, the initrd is read straight into guest memory, also across a region split', () => {
  const data = Buffer.alloc(8192);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
  withFile(data, (fd) => {
    const m = GuestMemory.fromLayout([{ start: 0, size: 4 * MiB }, { start: 4 * MiB, size: 4096 }]);
    const p = loadInitrd(m, fileSource(fd));
    assert.deepEqual(p, { address: 4 * MiB - 4096, size: 8192 });
    assert.deepEqual(Buffer.concat([m.read(p.address, 4096), m.read(4 * MiB, 4096)]), data);
  });
});

test('an initrd file cut short while it is read gives an InitrdError', () => {
  withFile(Buffer.alloc(10_000, 1), (fd, file) => {
    const src = fileSource(fd);
    fs.truncateSync(file, 6000);
    const m = GuestMemory.fromLayout([{ start: 0, size: 64 * MiB }]);
    assert.throws(() => loadInitrd(m, src), (e: unknown) =>
      e instanceof InitrdError && /ended after 6000 of its 10000 bytes; it was truncated while being read/.test(e.message));
  });
});

test('bytes that already are guest memory at the placement are left in place', () => {
  const m = GuestMemory.fromLayout([{ start: 0, size: 64 * MiB }]);
  const placement = initrdAddress(m, 10_000, { end: 0x200000 });
  m.write(placement.address, Buffer.alloc(10_000, 0x77));
  const view = m.view(placement.address, 10_000);
  assert.ok(isGuestView(m, placement, view));
  assert.ok(!isGuestView(m, placement, Buffer.from(view)), 'a copy is not the guest memory');
  assert.ok(!isGuestView(m, { ...placement, address: placement.address - 4096 }, view), 'nor is the same memory at another place');
  assert.deepEqual(loadInitrd(m, view, { end: 0x200000 }), placement);
  assert.deepEqual(m.read(placement.address, 10_000), Buffer.alloc(10_000, 0x77));
});
