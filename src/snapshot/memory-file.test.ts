import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GuestMemory } from '../memory/guest-memory';
import { tempDir } from '../testing/temp-dir';
import { dirtyBitmapFor, isDirty, memoryFileLayout, mergeDiffOnto, PAGE_SIZE, residentBitmap, writeDiffMemoryFile, writeFullMemoryFile } from './memory-file';

const layout = [{ start: 0, size: 16 * PAGE_SIZE }, { start: 0x100000, size: 8 * PAGE_SIZE }];

test('the memory file lays regions out one after the other', () => {
  const memory = GuestMemory.fromLayout(layout);
  assert.deepEqual(memoryFileLayout(memory), [
    { start: 0, size: 16 * PAGE_SIZE, fileOffset: 0 }, { start: 0x100000, size: 8 * PAGE_SIZE, fileOffset: 16 * PAGE_SIZE },
  ]);
});

test('a Diff holds only the dirty pages, and merged onto the base equals a Full of the same moment', () => {
  const dir = tempDir('sparkler-memfile-');
  const memory = GuestMemory.fromLayout(layout);
  memory.regions[0].bytes.fill(1);
  memory.regions[1].bytes.fill(2);
  const base = path.join(dir, 'base.mem');
  writeFullMemoryFile(memory, base);
  // Dirty: pages 3-4 of region 0 and page 7 of region 1.
  memory.regions[0].bytes.fill(9, 3 * PAGE_SIZE, 5 * PAGE_SIZE);
  memory.regions[1].bytes.fill(0, 7 * PAGE_SIZE, 8 * PAGE_SIZE); // a page the guest zeroed is still dirty
  const bitmaps = [dirtyBitmapFor(16 * PAGE_SIZE), dirtyBitmapFor(8 * PAGE_SIZE)];
  bitmaps[0][0] = 0b11000;
  bitmaps[1][0] = 0b10000000;
  const diff = path.join(dir, 'diff.mem');
  assert.equal(writeDiffMemoryFile(memory, diff, (i) => bitmaps[i]), 3);
  assert.equal(fs.statSync(diff).size, 24 * PAGE_SIZE, 'the diff has the full apparent size');
  assert.ok(fs.statSync(diff).blocks * 512 < 24 * PAGE_SIZE, 'and is sparse');
  const full = path.join(dir, 'full.mem');
  writeFullMemoryFile(memory, full);
  assert.equal(mergeDiffOnto(base, diff), 3 * PAGE_SIZE);
  assert.ok(fs.readFileSync(base).equals(fs.readFileSync(full)), 'base + diff is byte-identical to a Full');
});

test('a Diff without dirty tracking takes the resident pages (mincore) and the ones the host swapped out (pagemap bit 62)', () => {
  const dir = tempDir('sparkler-memfile-');
  const bytes = new Uint8Array(10 * PAGE_SIZE);
  // The region starts at host page 3 of the fake pagemap; its page 5 (entry 8) is swapped out.
  const pagemap = Buffer.alloc(16 * 8);
  pagemap.writeBigUInt64LE(1n << 62n, 8 * 8);
  pagemap.writeBigUInt64LE(1n << 62n, 2 * 8); // before the region: not its page
  fs.writeFileSync(path.join(dir, 'pagemap'), pagemap);
  const shim = {
    mincore: (_b: Uint8Array, out: Uint8Array) => { out[0] = 1; out[7] = 0x81; out[9] = 2; return 0; },
    addressOf: () => BigInt(3 * PAGE_SIZE),
  };
  const resident = (p: string) => {
    const bitmap = residentBitmap(bytes, shim, p);
    return [...Array(10).keys()].filter((page) => isDirty(bitmap, page));
  };
  assert.deepEqual(resident(path.join(dir, 'pagemap')), [0, 5, 7]);
  assert.deepEqual(resident(path.join(dir, 'missing')), [0, 7], 'without /proc: mincore alone');
  assert.throws(() => residentBitmap(bytes, { ...shim, mincore: () => -12 }), /mincore of guest memory failed \(errno 12\)/);
});
