import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeNative } from '../testing/fake-native';
import { HUGE_PAGE_SIZE } from './huge-pages';
import { createHugetlbGuestMemory, hugePagePool, MAP_GUEST_HUGETLB } from './hugetlb-memory';

const MiB = 1024 * 1024;

test('huge-page guest RAM asks for MAP_HUGETLB with 2 MiB pages and reserves them (no MAP_NORESERVE)', () => {
  const shim = new FakeNative();
  const calls: number[] = [];
  const mmap = shim.mmap.bind(shim);
  shim.mmap = ((length: number, prot: number, flags: number) => { calls.push(flags); return mmap(length); }) as typeof shim.mmap;
  const memory = createHugetlbGuestMemory([{ start: 0, size: 4 * MiB }, { start: 0x1_0000_0000, size: 2 * MiB }], shim);
  assert.equal(memory.totalBytes, 6 * MiB);
  assert.deepEqual(calls, [MAP_GUEST_HUGETLB, MAP_GUEST_HUGETLB]);
  assert.equal(MAP_GUEST_HUGETLB & 0x4000, 0, 'no MAP_NORESERVE');
  assert.equal(MAP_GUEST_HUGETLB & 0x40000, 0x40000, 'MAP_HUGETLB');
  assert.equal(MAP_GUEST_HUGETLB >>> 26, 21, '2 MiB pages');
});

test('a host with too few huge pages gets a sentence with the numbers, and nothing stays mapped', () => {
  const shim = new FakeNative();
  let n = 0;
  const mmap = shim.mmap.bind(shim);
  const made: ArrayBuffer[] = [];
  shim.mmap = ((length: number) => {
    if (n++ === 1) return -12;
    const m = mmap(length);
    made.push(m.buffer);
    return m;
  }) as typeof shim.mmap;
  assert.throws(() => createHugetlbGuestMemory([{ start: 0, size: 2 * MiB }, { start: 0x1_0000_0000, size: 256 * MiB }], shim, () => ({ free: 3, total: 10 })),
    (e: Error & { code?: string }) => e.code === 'EHUGEPAGES' && /256 MiB .* needs 128 free huge pages and the host has 3 \(of 10; errno 12\)/.test(e.message));
  assert.equal(made[0].byteLength, 0, 'the first region was unmapped again');
  assert.throws(() => createHugetlbGuestMemory([{ start: 0, size: 2 * MiB }], Object.assign(new FakeNative(), { mmap: () => -22 }), () => undefined),
    /this host has no 2 MiB hugetlbfs pool/);
});

test('guest RAM that is not whole huge pages is refused', () => {
  assert.throws(() => createHugetlbGuestMemory([{ start: 0, size: HUGE_PAGE_SIZE + 4096 }], new FakeNative()), /not made of whole 2 MiB pages/);
});

test('on this host: the real mmap either works or fails with the pool named', () => {
  const pool = hugePagePool();
  try {
    const memory = createHugetlbGuestMemory([{ start: 0, size: 2 * MiB }]);
    memory.write(0x1000, Buffer.from('huge'));
    assert.equal(memory.read(0x1000, 4).toString(), 'huge');
  } catch (err) {
    assert.equal((err as { code?: string }).code, 'EHUGEPAGES');
    assert.ok(pool === undefined || pool.free < 1, `failed with ${pool?.free} free huge pages: ${(err as Error).message}`);
  }
});
