import { test } from 'node:test';
import assert from 'node:assert/strict';
import { E820_RAM, E820_RESERVED, e820ForMemSize, e820FromRegions } from './e820';
import { GiB, MiB } from './layout';

test('128 MiB guest: conventional RAM, the EBDA reserved, RAM from 1 MiB', () => {
  assert.deepEqual(e820ForMemSize(128 * MiB), [
    { addr: 0, size: 0x9fc00, type: E820_RAM },
    { addr: 0x9fc00, size: 0x400, type: E820_RESERVED },
    { addr: 0x100000, size: 128 * MiB - 0x100000, type: E820_RAM },
  ]);
});

test('3 GiB ends at the MMIO gap (the 2 GiB region split is not visible)', () => {
  const e = e820ForMemSize(3 * GiB);
  assert.equal(e.length, 3);
  assert.deepEqual(e[2], { addr: 0x100000, size: 0xc000_0000 - 0x100000, type: E820_RAM });
});

test('more than 3 GiB: RAM above 4 GiB, nothing in the gap', () => {
  const e = e820ForMemSize(6 * GiB);
  assert.deepEqual(e[3], { addr: 0x1_0000_0000, size: 3 * GiB, type: E820_RAM });
  assert.equal(e.length, 4);
  for (const x of e) assert.ok(x.addr + x.size <= 0xc000_0000 || x.addr >= 0x1_0000_0000);
  const ram = e.filter((x) => x.type === E820_RAM).reduce((n, x) => n + x.size, 0);
  // All RAM except the EBDA kilobyte and the legacy hole is usable.
  assert.equal(ram, 6 * GiB - (0x100000 - 0x9fc00));
});

test('a guest smaller than 1 MiB gets only conventional memory', () => {
  assert.deepEqual(e820FromRegions([{ start: 0, size: 0x80000 }]), [{ addr: 0, size: 0x80000, type: E820_RAM }]);
});
