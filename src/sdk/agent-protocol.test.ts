import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeExec, encodeFrame, encodeWriteFile, FrameReader, FrameType, MAX_FRAME } from './agent-protocol';
import { AgentProtocolError } from './errors';

test('frames: length, type, payload; split anywhere they reassemble', () => {
  const bytes = Buffer.concat([encodeFrame(FrameType.STDOUT, Buffer.from('hello')), encodeFrame(FrameType.EXIT, Buffer.from([0, 0, 0, 3]))]);
  assert.deepEqual(bytes.subarray(0, 5), Buffer.from([0, 0, 0, 6, FrameType.STDOUT]));
  for (let cut = 0; cut <= bytes.length; cut++) {
    const r = new FrameReader();
    const frames = [...r.push(bytes.subarray(0, cut)), ...r.push(bytes.subarray(cut))];
    assert.deepEqual(frames.map((f) => [f.type, f.payload.toString('hex')]), [[FrameType.STDOUT, '68656c6c6f'], [FrameType.EXIT, '00000003']]);
    r.end();
  }
});

test('a truncated frame, a zero length or an oversized length is an AgentProtocolError', () => {
  const r = new FrameReader();
  r.push(encodeFrame(FrameType.OK, Buffer.from('abc')).subarray(0, 6));
  assert.throws(() => r.end(), (e: unknown) => e instanceof AgentProtocolError && e.code === 'EAGENTPROTOCOL' && /ended inside a frame/.test(e.message));
  assert.throws(() => new FrameReader().push(Buffer.from([0, 0, 0, 0, 1])), /length 0/);
  const big = Buffer.alloc(5);
  big.writeUInt32BE(MAX_FRAME + 1);
  assert.throws(() => new FrameReader().push(big), /more than the limit/);
  assert.throws(() => encodeFrame(FrameType.STDIN, Buffer.alloc(MAX_FRAME)), /larger than the agent's limit/);
});

test('exec and write-file requests: counts, NUL-terminated strings; NULs and "=" in names refused', () => {
  const e = encodeExec({ argv: ['sh', '-c', 'echo'], env: { A: '1' }, cwd: '/tmp' });
  assert.equal(e.readUInt32BE(0), 3);
  assert.equal(e.readUInt32BE(4), 1);
  assert.equal(e.subarray(8).toString(), '/tmp\0sh\0-c\0echo\0A=1\0');
  assert.throws(() => encodeExec({ argv: [] }), /argv is empty/);
  assert.throws(() => encodeExec({ argv: ['a\0b'] }), /NUL/);
  assert.throws(() => encodeExec({ argv: ['x'], env: { 'A=B': '1' } }), /contains "="/);
  const w = encodeWriteFile('/f', Buffer.from('data'), 0o600);
  assert.equal(w.readUInt32BE(0), 0o600);
  assert.equal(w.subarray(4).toString(), '/f\0data');
});
