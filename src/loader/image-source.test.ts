import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { withFile } from './fixtures';
import { bufferSource, fileSource, findStrings, readHead, readRange } from './image-source';

const bytes = Buffer.from('0123456789abcdef', 'latin1');

test('buffer and file sources read by position, short only at the end', () => {
  withFile(bytes, (fd) => {
    for (const src of [bufferSource(bytes), fileSource(fd)]) {
      assert.equal(src.size, 16);
      const dest = Buffer.alloc(4);
      assert.equal(src.readAt(dest, 10), 4);
      assert.equal(dest.toString('latin1'), 'abcd');
      assert.equal(src.readAt(dest, 14), 2, 'short at the end');
      assert.equal(dest.subarray(0, 2).toString('latin1'), 'ef');
      assert.equal(src.readAt(dest, 20), 0, 'nothing past the end');
      assert.equal(readHead(src, 3).toString('latin1'), '012');
      assert.equal(readHead(src, 100).length, 16);
      assert.equal(readRange(src, 12, 10).toString('latin1'), 'cdef');
      assert.equal(readRange(src, 30, 10).length, 0);
    }
  });
});

test('a file source reads the file as it is now: a file shortened after opening reads short', () => {
  withFile(bytes, (fd, file) => {
    const src = fileSource(fd);
    fs.truncateSync(file, 6);
    assert.equal(src.size, 16, 'the size as opened');
    const dest = Buffer.alloc(8);
    assert.equal(src.readAt(dest, 2), 4);
  });
});

test('findStrings finds needles anywhere, also across chunk borders', () => {
  const image = Buffer.alloc(100, 0x2e);
  image.write('Linux version ', 10, 'latin1'); // straddles the first 16-byte chunk border
  image.write('pvm_early_setup', 85, 'latin1'); // ends at the last byte, straddling the border at 96
  const src = bufferSource(image);
  for (const chunkSize of [1, 7, 16, 64, 4096]) {
    assert.deepEqual(findStrings(src, ['Linux version ', 'pvm_early_setup'], { chunkSize }), new Set(['Linux version ', 'pvm_early_setup']), `chunk ${chunkSize}`);
    assert.deepEqual(findStrings(src, ['absent', 'Linux version '], { chunkSize }), new Set(['Linux version ']));
  }
  assert.deepEqual(findStrings(bufferSource(Buffer.alloc(0)), ['x']), new Set());
});

test('findStrings stops reading once stopAt is found', () => {
  const image = Buffer.alloc(1000);
  image.write('stop', 20, 'latin1');
  image.write('later', 900, 'latin1');
  let reads = 0;
  const src = { size: image.length, readAt: (d: Uint8Array, p: number) => { reads++; return bufferSource(image).readAt(d, p); } };
  assert.deepEqual(findStrings(src, ['stop', 'later'], { chunkSize: 100, stopAt: 'stop' }), new Set(['stop']));
  assert.equal(reads, 1);
});
