/**
 * The native shim's fd, mapping and watch calls on real fds of this process (no KVM needed):
 * sockets, FIFOs, anonymous mappings and a regular file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  FD_READABLE, FD_WRITABLE, MSG_CTRUNC, native, RecvmsgResult, SOCK_DGRAM, SOCK_NONBLOCK, SOCK_STREAM, WatchHandle,
} from './native';
import { tempDir } from './testing/temp-dir';
import { waitFor } from './testing/wait';

const EBADF = 9;
const EAGAIN = 11;
const EINVAL = 22;
const O_RDONLY = 0;
const O_WRONLY = 1;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const PROT_READ_WRITE = 3;
const MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20;
const MADV_DONTNEED = 4;
const FIONREAD = 0x541b;
const PAGE = 4096;

const shim = native();

/** A connected non-blocking AF_UNIX pair, closed after the test. */
function pair(t: { after(fn: () => void): void }, type = SOCK_STREAM): [number, number] {
  const fds = shim.socketpair(type | SOCK_NONBLOCK);
  assert.ok(Array.isArray(fds), `socketpair failed: ${String(fds)}`);
  t.after(() => fds.forEach((fd) => shim.close(fd)));
  return fds;
}

/** A FIFO's two ends, non-blocking (the read end is opened first so the write end's open succeeds). */
function fifo(t: { after(fn: () => void): void }): { readEnd: number; writeEnd: number } {
  const file = path.join(tempDir('sparkler-native-'), 'fifo');
  execFileSync('mkfifo', [file]);
  const readEnd = shim.open(file, O_RDONLY | O_NONBLOCK);
  const writeEnd = shim.open(file, O_WRONLY | O_NONBLOCK);
  assert.ok(readEnd >= 0 && writeEnd >= 0, `opening the FIFO failed: ${readEnd}, ${writeEnd}`);
  t.after(() => { shim.close(readEnd); shim.close(writeEnd); });
  return { readEnd, writeEnd };
}

function received(r: RecvmsgResult | number): RecvmsgResult {
  assert.equal(typeof r, 'object', `recvmsg failed: ${String(r)}`);
  return r as RecvmsgResult;
}

test('write and read move bytes through a socketpair; an empty one answers -EAGAIN, a closed peer 0', (t) => {
  const [a, b] = pair(t);
  assert.equal(shim.read(b, Buffer.alloc(8)), -EAGAIN);
  assert.equal(shim.write(a, Buffer.from('hello')), 5);
  const buf = Buffer.alloc(16);
  assert.equal(shim.read(b, buf), 5);
  assert.equal(buf.subarray(0, 5).toString(), 'hello');
  assert.equal(shim.read(b, buf), -EAGAIN);
  const [c, d] = shim.socketpair(SOCK_STREAM | SOCK_NONBLOCK) as [number, number];
  shim.close(c);
  assert.equal(shim.read(d, buf), 0, 'end of stream');
  shim.close(d);
  assert.equal(shim.read(d, buf), -EBADF);
});

test('lengths are bytes whatever the view: a Uint16Array, a DataView and a subarray', (t) => {
  const [a, b] = pair(t);
  assert.equal(shim.write(a, new Uint16Array([0x0201, 0x0403, 0x0605])), 6);
  const backing = new Uint8Array(16).fill(0xee);
  assert.equal(shim.read(b, new DataView(backing.buffer, 4, 4)), 4, 'the DataView holds 4 bytes');
  assert.equal(shim.read(b, backing.subarray(10, 12)), 2);
  assert.deepEqual([...backing], [0xee, 0xee, 0xee, 0xee, 1, 2, 3, 4, 0xee, 0xee, 5, 6, 0xee, 0xee, 0xee, 0xee]);
  assert.throws(() => shim.read(b, [1, 2] as unknown as Uint8Array), TypeError);
});

test('writev gathers and readv scatters, in order', (t) => {
  const [a, b] = pair(t);
  assert.equal(shim.writev(a, [Buffer.from('ab'), new Uint8Array(0), Buffer.from('cdefg')]), 7);
  const head = Buffer.alloc(3);
  const tail = Buffer.alloc(10);
  assert.equal(shim.readv(b, [head, tail]), 7);
  assert.equal(head.toString(), 'abc');
  assert.equal(tail.subarray(0, 4).toString(), 'defg');
  assert.equal(shim.readv(b, [head]), -EAGAIN);
  assert.equal(shim.writev(a, new Array(1025).fill(Buffer.alloc(1))), -EINVAL, 'more than IOV_MAX');
  assert.equal(shim.writev(a, new Array(100).fill(Buffer.from('x'))), 100, 'more iovecs than fit on the stack');
});

test('a full non-blocking socket answers -EAGAIN to write and writev', (t) => {
  const [a] = pair(t);
  const chunk = Buffer.alloc(65536);
  let writes = 0;
  while (shim.write(a, chunk) > 0) assert.ok(++writes < 10_000, 'the socket never filled');
  assert.equal(shim.write(a, chunk), -EAGAIN);
  assert.equal(shim.writev(a, [chunk]), -EAGAIN);
});

test('sendmsg passes a FIFO fd over a socketpair; the received fd is close-on-exec and writes to the same FIFO', (t) => {
  const [a, b] = pair(t);
  const { readEnd, writeEnd } = fifo(t);
  assert.equal(shim.recvmsg(b, [Buffer.alloc(4)], 1), -EAGAIN);
  assert.equal(shim.sendmsg(a, [Buffer.from('fd')], [writeEnd]), 2);
  const buf = Buffer.alloc(4);
  const r = received(shim.recvmsg(b, [buf], 4));
  assert.equal(r.bytes, 2);
  assert.equal(buf.subarray(0, 2).toString(), 'fd');
  assert.equal(r.fds.length, 1);
  const [passed] = r.fds;
  t.after(() => shim.close(passed));
  assert.notEqual(passed, writeEnd, 'a new fd for the same file');
  const flags = /flags:\s+([0-7]+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${passed}`, 'utf8'));
  assert.ok(flags && (parseInt(flags[1], 8) & O_CLOEXEC) !== 0, 'MSG_CMSG_CLOEXEC');
  assert.equal(shim.write(passed, Buffer.from('through')), 7);
  const out = Buffer.alloc(16);
  assert.equal(shim.read(readEnd, out), 7);
  assert.equal(out.subarray(0, 7).toString(), 'through');
});

test('recvmsg with no room for fds drops them and says so (MSG_CTRUNC); bad fd counts are refused', (t) => {
  const [a, b] = pair(t, SOCK_DGRAM);
  const { writeEnd } = fifo(t);
  assert.equal(shim.sendmsg(a, [Buffer.from('x')], [writeEnd, writeEnd]), 1);
  const r = received(shim.recvmsg(b, [Buffer.alloc(1)], 1));
  assert.equal(r.fds.length, 1);
  assert.ok(r.flags & MSG_CTRUNC, 'the second fd did not fit');
  shim.close(r.fds[0]);
  assert.equal(shim.sendmsg(a, [Buffer.from('y')], [writeEnd]), 1);
  const none = received(shim.recvmsg(b, [Buffer.alloc(1)], 0));
  assert.deepEqual([none.bytes, none.fds], [1, []]);
  assert.ok(none.flags & MSG_CTRUNC);
  assert.equal(shim.sendmsg(a, [Buffer.from('z')], new Array(254).fill(writeEnd)), -EINVAL);
  assert.equal(shim.recvmsg(b, [Buffer.alloc(1)], 254), -EINVAL);
  assert.equal(shim.recvmsg(b, [Buffer.alloc(1)], -1), -EINVAL);
  assert.throws(() => shim.sendmsg(a, [Buffer.from('z')], ['0' as unknown as number]), TypeError);
});

test('a datagram socketpair keeps message boundaries', (t) => {
  const [a, b] = pair(t, SOCK_DGRAM);
  assert.equal(shim.write(a, Buffer.from('one')), 3);
  assert.equal(shim.write(a, Buffer.from('three')), 5);
  const buf = Buffer.alloc(16);
  assert.equal(shim.read(b, buf), 3);
  assert.equal(shim.read(b, buf), 5);
});

test('an ioctl whose request encodes no size takes a view of any length (FIONREAD)', (t) => {
  const [a, b] = pair(t);
  shim.write(a, Buffer.from('12345'));
  const count = new Int32Array(1);
  assert.equal(shim.ioctl(b, FIONREAD, count), 0);
  assert.equal(count[0], 5);
});

test('munmap unmaps now and detaches every view; again, or on another buffer, is -EINVAL', () => {
  const mapped = shim.mmap(2 * PAGE, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0);
  assert.equal(typeof mapped, 'object', `mmap failed: ${String(mapped)}`);
  const { buffer, address } = mapped as { buffer: ArrayBuffer; address: bigint };
  const bytes = new Uint8Array(buffer);
  const words = new Uint32Array(buffer, PAGE);
  bytes.fill(7);
  // The kernel may merge the mapping with a neighbour, so look for any line that covers it.
  const mapsHave = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\n').some((l) => {
    const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(l);
    return m !== null && BigInt(`0x${m[1]}`) <= address && address < BigInt(`0x${m[2]}`);
  });
  assert.ok(mapsHave(), 'the mapping is in /proc/self/maps');
  assert.equal(shim.munmap(buffer), 0);
  assert.equal(buffer.byteLength, 0);
  assert.equal(bytes.length, 0);
  assert.equal(words.length, 0);
  assert.equal(bytes[0], undefined, 'no access to the unmapped memory');
  assert.ok(!mapsHave(), 'gone from /proc/self/maps at once');
  assert.equal(shim.munmap(buffer), -EINVAL);
  assert.equal(shim.munmap(new ArrayBuffer(PAGE)), -EINVAL);
  assert.throws(() => shim.munmap(bytes as unknown as ArrayBuffer), TypeError);
});

test('madvise takes a byte range: MADV_DONTNEED on the first page leaves the second; other views are refused', () => {
  const { buffer } = shim.mmap(2 * PAGE, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0) as { buffer: ArrayBuffer };
  const bytes = new Uint8Array(buffer).fill(9);
  assert.equal(shim.madvise(bytes.subarray(0, PAGE), MADV_DONTNEED), 0);
  assert.equal(bytes[0], 0, 'the first page reads as fresh zeroes');
  assert.equal(bytes[PAGE], 9, 'the second page was not in the range');
  assert.throws(() => shim.madvise(new Uint32Array(buffer) as unknown as Uint8Array, MADV_DONTNEED), TypeError);
  assert.equal(shim.munmap(buffer), 0);
});

test('watchFd on a regular file throws EWATCHFD naming the fd and libuv error', () => {
  const file = path.join(tempDir('sparkler-native-'), 'plain');
  fs.writeFileSync(file, 'x');
  const fd = fs.openSync(file, 'r');
  try {
    assert.throws(() => shim.watchFd(fd, () => {}), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'EWATCHFD');
      assert.match(err.message, new RegExp(`^Cannot watch fd ${fd}: uv_poll_init failed: operation not permitted \\(EPERM\\)\\.$`));
      return true;
    });
  } finally {
    fs.closeSync(fd);
  }
});

test('a readable watch fires when data arrives, an fd is watched once, and nothing fires after unwatchFd', async (t) => {
  const [a, b] = pair(t);
  const seen: number[] = [];
  const handle = shim.watchFd(b, (events) => {
    seen.push(events);
    shim.read(b, Buffer.alloc(64));
  });
  assert.throws(() => shim.watchFd(b, () => {}), /Cannot watch fd \d+: uv_poll_init failed: .*\(EEXIST\)/);
  shim.write(a, Buffer.from('ping'));
  await waitFor(() => seen.length > 0, 'the readable watch');
  assert.equal(seen[0], FD_READABLE);
  shim.unwatchFd(handle);
  shim.unwatchFd(handle);
  const before = seen.length;
  shim.write(a, Buffer.from('again'));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(seen.length, before);
  assert.throws(() => shim.updateWatch(handle, 'r'), /Cannot update the watch of fd \d+: it was stopped with unwatchFd\./);
});

test('a writable watch fires while there is room; updateWatch narrows it, pauses it, and checks the mask', async (t) => {
  const [, b] = pair(t);
  const seen: number[] = [];
  let handle: WatchHandle | undefined;
  handle = shim.watchFd(b, (events) => {
    seen.push(events);
    if (handle && seen.length === 3) shim.updateWatch(handle, 0);
  }, 'rw');
  t.after(() => handle && shim.unwatchFd(handle));
  await waitFor(() => seen.length >= 3, 'the writable watch');
  assert.deepEqual(seen.slice(0, 3), [FD_WRITABLE, FD_WRITABLE, FD_WRITABLE], 'level-triggered, and not readable');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(seen.length, 3, 'paused');
  shim.updateWatch(handle, FD_WRITABLE);
  await waitFor(() => seen.length > 3, 'the watch resumed');
  shim.updateWatch(handle, 'r');
  assert.throws(() => shim.updateWatch(handle as WatchHandle, 4), RangeError);
  assert.throws(() => shim.updateWatch(handle as WatchHandle, 'x' as 'r'), RangeError);
  assert.throws(() => shim.watchFd(b, () => {}, 0), RangeError);
});
