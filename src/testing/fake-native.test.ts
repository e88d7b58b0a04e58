/** The fake shim's fd, mapping and watch calls answer as the native ones do (src/native.test.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeNative } from './fake-native';
import { FD_READABLE, FD_WRITABLE, MSG_CTRUNC, MSG_TRUNC, RecvmsgResult } from '../native';

const EAGAIN = 11;
const EINVAL = 22;

test('fake socketpair: writes reach the peer as messages; empty reads answer -EAGAIN', () => {
  const shim = new FakeNative();
  const [a, b] = shim.socketpair();
  assert.equal(shim.read(b, Buffer.alloc(4)), -EAGAIN);
  assert.equal(shim.writev(a, [Buffer.from('ab'), new Uint16Array([0x6463])]), 4);
  const head = Buffer.alloc(1);
  const tail = Buffer.alloc(8);
  assert.equal(shim.readv(b, [head, tail]), 4);
  assert.equal(head.toString() + tail.subarray(0, 3).toString(), 'abcd');
  assert.equal(shim.sendmsg(b, [Buffer.from('x')], [7, 8]), 1);
  const r = shim.recvmsg(a, [Buffer.alloc(1)], 1) as RecvmsgResult;
  assert.deepEqual(r, { bytes: 1, fds: [7], flags: MSG_CTRUNC });
});

test('fake fds without a peer: feed queues reads, writes are recorded, writeRoom makes -EAGAIN', () => {
  const shim = new FakeNative();
  const tap = shim.open();
  shim.feed(tap, Buffer.from('packet'));
  const small = Buffer.alloc(3);
  assert.deepEqual(shim.recvmsg(tap, [small], 0), { bytes: 3, fds: [], flags: MSG_TRUNC });
  assert.equal(shim.read(tap, small), -EAGAIN, 'the rest of a cut message is dropped');
  shim.writeRoom.set(tap, 4);
  assert.equal(shim.write(tap, Buffer.from('abc')), 3);
  assert.equal(shim.write(tap, Buffer.from('de')), -EAGAIN);
  assert.deepEqual(shim.written.get(tap)?.map((m) => m.bytes.toString()), ['abc']);
});

test('fake munmap detaches buffers from mmap once; others are -EINVAL', () => {
  const shim = new FakeNative();
  const { buffer } = shim.mmap(64);
  const view = new Uint8Array(buffer);
  assert.equal(shim.munmap(buffer), 0);
  assert.equal(view.length, 0);
  assert.equal(shim.munmap(buffer), -EINVAL);
  assert.equal(shim.munmap(new ArrayBuffer(8)), -EINVAL);
});

test('fake watches fire for the events they wait for until paused or stopped', () => {
  const shim = new FakeNative();
  const seen: number[] = [];
  const handle = shim.watchFd(5, (e) => seen.push(e));
  assert.equal(shim.fireWatch(5, FD_WRITABLE), 0, 'not watching for writability');
  shim.updateWatch(handle, 'rw');
  assert.equal(shim.fireWatch(5, FD_READABLE | FD_WRITABLE), 1);
  shim.updateWatch(handle, 0);
  assert.equal(shim.fireWatch(5), 0);
  shim.unwatchFd(handle);
  assert.throws(() => shim.updateWatch(handle, 'r'));
  assert.deepEqual(seen, [FD_READABLE | FD_WRITABLE]);
});
