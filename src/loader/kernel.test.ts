import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory } from '../memory/guest-memory';
import { KernelImageError } from './errors';
import { loadKernel } from './kernel';
import { makeBzImage, makeElf, withFile } from './fixtures';
import { bufferSource, fileSource } from './image-source';

const mem = () => GuestMemory.fromLayout([{ start: 0, size: 32 * 1024 * 1024 }]);

test('detects ELF and bzImage by their magic', () => {
  assert.equal(loadKernel(mem(), makeElf([{ paddr: 0x100000, data: Buffer.from('x') }])).format, 'elf');
  assert.equal(loadKernel(mem(), makeBzImage()).format, 'bzImage');
});

test('anything else is refused with a clear message', () => {
  assert.throws(() => loadKernel(mem(), Buffer.alloc(0)), /not a valid ELF or bzImage: the file is empty/);
  assert.throws(() => loadKernel(mem(), Buffer.alloc(4096, 0x41)), (e: unknown) =>
    e instanceof KernelImageError && /neither the ELF magic .* nor a Linux boot header/.test(e.message));
  // A gzip file, e.g. someone passing vmlinuz.gz.
  assert.throws(() => loadKernel(mem(), Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0])), KernelImageError);
});

test('reads files (and any ImageSource) as well as Buffers', () => {
  for (const image of [makeElf([{ paddr: 0x100000, data: Buffer.from('elf!') }]), makeBzImage({ payload: Buffer.from('bz!!') })]) {
    withFile(image, (fd) => {
      const m = mem();
      loadKernel(m, fileSource(fd));
      assert.match(m.read(0x100000, 4).toString(), /^(elf|bz)!+$/);
    });
  }
  withFile(Buffer.alloc(0), (fd) => assert.throws(() => loadKernel(mem(), fileSource(fd)), /the file is empty/));
  assert.throws(() => loadKernel(mem(), bufferSource(Buffer.alloc(100, 0x41))), /neither the ELF magic/);
});
