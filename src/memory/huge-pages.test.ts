import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadKernel } from '../loader/kernel';
import { makeBzImage, makeElf } from '../loader/fixtures';
import type { NativeShim } from '../native';
import { createAnonymousGuestMemory } from './anonymous-memory';
import { GuestMemory } from './guest-memory';
import { adviseHugePages, adviseKernelHugePages, HUGE_PAGE_SIZE } from './huge-pages';

const MiB = 1024 * 1024;

/** Records madvise calls as guest ranges of `memory` (found from the views' offsets). */
function recordingShim(memory: GuestMemory, answer = 0): { shim: NativeShim; calls: Array<[number, number, number]> } {
  const calls: Array<[number, number, number]> = [];
  const shim = {
    madvise(bytes: Uint8Array, advice: number): number {
      const region = memory.regions.find((r) => r.bytes.buffer === bytes.buffer)!;
      const start = region.start + (bytes.byteOffset - region.bytes.byteOffset);
      calls.push([start, start + bytes.length, advice]);
      return answer;
    },
  } as unknown as NativeShim;
  return { shim, calls };
}

test('huge-page advice is widened to 2 MiB boundaries and clipped to each region', () => {
  const memory = GuestMemory.fromLayout([{ start: 0, size: 8 * MiB }, { start: 16 * MiB, size: 8 * MiB }]);
  const { shim, calls } = recordingShim(memory);
  const advised = adviseHugePages(memory, 3 * MiB, 17 * MiB + 1, shim);
  assert.deepEqual(calls, [[2 * MiB, 8 * MiB, 14], [16 * MiB, 18 * MiB, 14]]);
  assert.equal(advised, 8 * MiB);
  assert.equal(adviseHugePages(memory, 9 * MiB, 15 * MiB, shim), 0, 'a hole between regions advises nothing');
});

test('a kernel footprint under 4 MiB keeps small pages; a Linux-sized one gets huge pages', () => {
  const memory = GuestMemory.fromLayout([{ start: 0, size: 64 * MiB }]);
  const { shim, calls } = recordingShim(memory);
  assert.equal(adviseKernelHugePages(memory, 0x1000000, 0x1000000 + 16 * 1024, shim), 0);
  assert.deepEqual(calls, []);
  assert.equal(adviseKernelHugePages(memory, 0x100000, 0x1000000 + 30 * MiB, shim), 46 * MiB);
});

test('a host that refuses the advice (no THP) is not an error: nothing counts as advised', () => {
  const memory = GuestMemory.fromLayout([{ start: 0, size: 4 * MiB }]);
  const { shim } = recordingShim(memory, -22);
  assert.equal(adviseHugePages(memory, 0, 4 * MiB, shim), 0);
});

test('guest RAM mappings start on a 2 MiB host boundary, so KVM can map huge pages', () => {
  const memory = createAnonymousGuestMemory([{ start: 0, size: 6 * MiB }]);
  const [r] = memory.regions;
  assert.equal(r.hostAddress % BigInt(HUGE_PAGE_SIZE), 0n);
  assert.equal(r.bytes.length, 6 * MiB);
  r.bytes[r.bytes.length - 1] = 1; // the last byte is ours
  assert.ok(adviseHugePages(memory, 0, 6 * MiB) >= 0);
});

test('the kernel loaders announce the range they will occupy before writing it', () => {
  for (const [name, image, want] of [
    ['vmlinux', makeElf([{ paddr: 0x1000000, data: Buffer.alloc(64, 0xf4), memsz: 3 * MiB }]), [0x1000000, 0x1000000 + 3 * MiB]],
    ['bzImage', makeBzImage({ payload: Buffer.alloc(0x1000, 0xcc), initSize: 20 * MiB }), [0x100000, 0x1000000 + 20 * MiB]],
  ] as const) {
    const memory = GuestMemory.fromLayout([{ start: 0, size: 64 * MiB }]);
    const seen: number[][] = [];
    loadKernel(memory, image, {
      beforeLoad: (start, end) => {
        assert.ok(memory.view(want[0], 64).every((b) => b === 0), `${name}: nothing written yet`);
        seen.push([start, end]);
      },
    });
    assert.deepEqual(seen, [[...want]], name);
  }
});
