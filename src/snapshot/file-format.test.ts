import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeSnapshotFile, decodeSnapshotHeader, encodeSnapshotFile, SNAPSHOT_FORMAT_VERSION } from './file-format';

const state = { regs: Buffer.from([1, 2, 3, 250]), clock: 0xffff_ffff_ffff_fff0n, list: [{ a: 1, b: 'x', c: null }], skipped: undefined };

test('a snapshot file round-trips bytes, 64-bit integers and plain values', () => {
  const file = encodeSnapshotFile(state);
  const { header, state: back } = decodeSnapshotFile(file);
  assert.equal(header.version, SNAPSHOT_FORMAT_VERSION);
  assert.equal(header.arch, 62);
  assert.deepEqual(back, { regs: state.regs, clock: state.clock, list: state.list });
});

const refused = (file: Buffer, code: string, message: RegExp) =>
  assert.throws(() => decodeSnapshotFile(file, 'the file'), (err: Error & { code?: string }) => {
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });

test('a file that is not a snapshot, empty or foreign, is refused as such', () => {
  refused(Buffer.alloc(0), 'ESNAPSHOTFORMAT', /^the file is not a Sparkler snapshot/);
  refused(Buffer.from('{"not":"a snapshot"}'), 'ESNAPSHOTFORMAT', /not a Sparkler snapshot/);
});

test('a truncated file says how much of it is there', () => {
  const file = encodeSnapshotFile(state);
  refused(file.subarray(0, file.length - 1), 'ESNAPSHOTTRUNCATED', /truncated: it has \d+ bytes of the \d+ its header announces/);
  refused(file.subarray(0, 30), 'ESNAPSHOTTRUNCATED', /truncated/);
});

test('one flipped bit anywhere after the magic is caught by the checksum or the header checks', () => {
  const file = encodeSnapshotFile(state);
  for (let at = 8; at < file.length; at++) {
    const bad = Buffer.from(file);
    bad[at] ^= 0x10;
    assert.throws(() => decodeSnapshotFile(bad), /corrupt|truncated|version|made on/, `bit flipped at byte ${at}`);
  }
  const extra = Buffer.concat([file, Buffer.from([0])]);
  refused(extra, 'ESNAPSHOTCORRUPT', /1 bytes after its checksum/);
});

test('a newer format version and another architecture are refused with what they are', () => {
  refused(encodeSnapshotFile(state, SNAPSHOT_FORMAT_VERSION + 1), 'ESNAPSHOTVERSION', /format version 2; this Sparkler reads up to version 1/);
  refused(encodeSnapshotFile(state, SNAPSHOT_FORMAT_VERSION, 183), 'ESNAPSHOTARCH', /made on aarch64; this host is x86_64/);
  assert.equal(decodeSnapshotHeader(encodeSnapshotFile(state, 7)).version, 7, 'the header alone reads any version (--describe-snapshot)');
});
