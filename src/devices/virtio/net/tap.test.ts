import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import {
  IFF_NO_PI, IFF_TAP, IFF_VNET_HDR, IFNAMSIZ, TUNSETIFF, TUNSETOFFLOAD, TUNSETVNETHDRSZ, TUN_F_CSUM, VNET_HDR_SIZE,
} from './constants';
import { errnoText, Tap, TapError, TapShim } from './tap';

/** A shim that records calls; `fail` maps an ioctl request to the errno it returns. */
function fakeShim(fail: Record<number, number> = {}, openErrno = 0) {
  const calls: Array<{ request: number; arg: number | bigint | Buffer }> = [];
  const closed: number[] = [];
  const shim: TapShim = {
    open: () => (openErrno ? -openErrno : 7),
    close: (fd) => { closed.push(fd); return 0; },
    ioctl: (_fd, request, arg) => {
      calls.push({ request, arg: ArrayBuffer.isView(arg) ? Buffer.from(arg.buffer, arg.byteOffset, arg.byteLength) : arg as number });
      return fail[request] ? -fail[request] : 0;
    },
    read: () => -11,
    writev: () => 0,
  };
  return { shim, calls, closed };
}

test('opens with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR and a 12-byte vnet header', () => {
  const { shim, calls } = fakeShim();
  const tap = Tap.open('tap0', shim);
  assert.equal(tap.fd, 7);
  const ifr = calls[0].arg as Buffer;
  assert.equal(calls[0].request, TUNSETIFF);
  assert.equal(ifr.toString('utf8', 0, 4), 'tap0');
  assert.equal(ifr[4], 0, 'the name is NUL-terminated');
  assert.equal(ifr.readUInt16LE(IFNAMSIZ), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
  assert.equal(calls[1].request, TUNSETVNETHDRSZ);
  assert.equal((calls[1].arg as Buffer).readInt32LE(0), VNET_HDR_SIZE);
  tap.setOffloads(TUN_F_CSUM);
  assert.deepEqual(calls[2], { request: TUNSETOFFLOAD, arg: TUN_F_CSUM });
});

test('a name of 16 bytes or more is refused before any syscall', () => {
  const { shim, calls } = fakeShim();
  assert.throws(() => Tap.open('a'.repeat(16), shim), (e: TapError) => e.code === 'ETAPNAME' && /Invalid interface name/.test(e.message));
  assert.throws(() => Tap.open('', shim), TapError);
  assert.equal(calls.length, 0);
});

test("Firecracker's words for a TAP with other flags (multi_queue) and for a busy TAP; the fd is closed", () => {
  const inval = fakeShim({ [TUNSETIFF]: 22 });
  assert.throws(() => Tap.open('mq0', inval.shim), (e: TapError) => e.message ===
    'Open tap device failed: Error while creating ifreq structure: Invalid argument (os error 22). Invalid TUN/TAP Backend provided by mq0. Check our documentation on setting up the network devices.');
  assert.deepEqual(inval.closed, [7]);
  const busy = fakeShim({ [TUNSETIFF]: 16 });
  assert.throws(() => Tap.open('t1', busy.shim), (e: TapError) => e.code === 'ETAPBUSY' && /Device or resource busy \(os error 16\)/.test(e.message));
  const noTun = fakeShim({}, 2);
  assert.throws(() => Tap.open('t1', noTun.shim), /Open tap device failed: Error while opening \/dev\/net\/tun: No such file or directory \(os error 2\)/);
  const offload = fakeShim({ [TUNSETOFFLOAD]: 22 });
  assert.throws(() => Tap.open('t2', offload.shim).setOffloads(1), (e: TapError) => e.code === 'ETAPOFFLOAD');
});

test('errnoText prints errnos as Rust does', () => {
  assert.equal(errnoText(1), 'Operation not permitted (os error 1)');
  assert.equal(errnoText(9999), 'os error 9999');
});

const canTap = process.getuid?.() === 0 && fs.existsSync('/dev/net/tun');

test('real TAP: a second open of a held TAP is busy; a multi_queue TAP is refused', { skip: canTap ? false : 'needs root and /dev/net/tun' }, () => {
  const { native } = require('../../../native') as typeof import('../../../native');
  const name = `spkt${process.pid % 100000}`;
  const first = Tap.open(name, native());
  try {
    assert.throws(() => Tap.open(name, native()), (e: TapError) => e.code === 'ETAPBUSY');
  } finally {
    first.close();
  }
  const mq = `spkq${process.pid % 100000}`;
  execFileSync('ip', ['tuntap', 'add', 'dev', mq, 'mode', 'tap', 'multi_queue']);
  try {
    assert.throws(() => Tap.open(mq, native()), /Invalid TUN\/TAP Backend provided by spkq/);
  } finally {
    execFileSync('ip', ['link', 'del', mq]);
  }
});
