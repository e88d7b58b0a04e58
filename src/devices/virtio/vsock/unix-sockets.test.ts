/**
 * The muxer over real Unix sockets (node:net), the guest emulated through the real queues: what
 * the fakes cannot show (half-close, back-pressure through the kernel, EPIPE, stale sockets).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as net from 'node:net';
import * as path from 'node:path';
import { nodeTimers } from '../../../ratelimit/clock';
import { tempDir } from '../../../testing/temp-dir';
import { waitFor } from '../../../testing/wait';
import { nodeHostNet } from './host-net';
import { Op } from './packet';
import { VsockGuest } from './testing';

const dir = tempDir('sparkler-vsock-');
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** A guest echo server on every port: accepts REQUESTs, echoes RW bytes, grants credit as it goes. */
function echoGuest(g: VsockGuest): () => void {
  const fwd = new Map<number, number>();
  const timer = setInterval(() => {
    for (const p of g.received()) {
      const { srcPort: host, dstPort: port } = p.header;
      if (p.header.op === Op.REQUEST) g.send(Op.RESPONSE, port, host);
      if (p.header.op === Op.RW) {
        const n = (fwd.get(host) ?? 0) + p.payload.length;
        fwd.set(host, n);
        g.send(Op.RW, port, host, { payload: p.payload, fwdCnt: n });
      }
      if (p.header.op === Op.SHUTDOWN) g.send(Op.RST, port, host);
      if (p.header.op === Op.CREDIT_REQUEST) g.send(Op.CREDIT_UPDATE, port, host, { fwdCnt: fwd.get(host) ?? 0 });
    }
  }, 0);
  return () => clearInterval(timer);
}

function hostConnect(uds: string, port: number): Promise<{ sock: net.Socket; firstLine: string; rest: Buffer[] }> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(uds, () => sock.write(`CONNECT ${port}\n`));
    let got = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      got = Buffer.concat([got, d]);
      const nl = got.indexOf(10);
      if (nl < 0) return;
      sock.off('data', onData);
      resolve({ sock, firstLine: got.subarray(0, nl).toString(), rest: [got.subarray(nl + 1)] });
    };
    sock.on('data', onData);
    sock.on('error', reject);
    sock.on('close', () => reject(new Error('closed before OK')));
  });
}

test('8 host connections each echo 1 MiB through the emulated guest; checksums match', async () => {
  const uds = path.join(dir, 'echo.sock');
  const g = new VsockGuest({ realNet: nodeHostNet(), udsPath: uds, timers: nodeTimers });
  const stop = echoGuest(g);
  try {
    await waitFor(() => require('node:fs').existsSync(uds), 'the vsock socket');
    await Promise.all(Array.from({ length: 8 }, async () => {
      const blob = randomBytes(1 << 20);
      const c = await hostConnect(uds, 52);
      assert.match(c.firstLine, /^OK [0-9]+$/);
      const chunks = c.rest;
      c.sock.on('data', (d: Buffer) => chunks.push(d));
      c.sock.write(blob);
      await waitFor(() => chunks.reduce((n, b) => n + b.length, 0) >= blob.length, 'the echo', 30_000);
      assert.equal(md5(Buffer.concat(chunks)), md5(blob));
      c.sock.destroy();
    }));
  } finally {
    stop();
    g.device.dispose();
  }
});

test('guest-initiated connections reach <uds_path>_<port>; a port with no listener gets RST', async () => {
  const uds = path.join(dir, 'g2h.sock');
  const g = new VsockGuest({ realNet: nodeHostNet(), udsPath: uds, timers: nodeTimers });
  const server = net.createServer((s) => s.pipe(s)).listen(`${uds}_5000`);
  await new Promise((r) => server.once('listening', r));
  try {
    for (let i = 0; i < 4; i++) g.send(Op.REQUEST, 40000 + i, 5000);
    g.send(Op.REQUEST, 41000, 5999);
    const seen: { op: number; port: number; payload: Buffer }[] = [];
    const poll = setInterval(() => g.received().forEach((p) => seen.push({ op: p.header.op, port: p.header.dstPort, payload: p.payload })), 0);
    await waitFor(() => seen.filter((p) => p.op === Op.RESPONSE).length === 4 && seen.some((p) => p.op === Op.RST), 'answers');
    assert.deepEqual(seen.filter((p) => p.op === Op.RST).map((p) => p.port), [41000]);
    for (let i = 0; i < 4; i++) g.send(Op.RW, 40000 + i, 5000, { payload: Buffer.from(`hello ${i}`) });
    await waitFor(() => seen.filter((p) => p.op === Op.RW).length >= 4, 'echoes');
    assert.deepEqual(seen.filter((p) => p.op === Op.RW).map((p) => p.payload.toString()).sort(), ['hello 0', 'hello 1', 'hello 2', 'hello 3']);
    // The host side drops every accepted socket: each guest connection gets RST, the device lives on.
    clearInterval(poll);
    assert.equal(g.device.muxer.connectionCount, 4);
  } finally {
    server.close();
    g.device.dispose();
  }
});

test('host connections closed mid-stream leave the muxer healthy', async () => {
  const uds = path.join(dir, 'epipe.sock');
  const g = new VsockGuest({ realNet: nodeHostNet(), udsPath: uds, timers: nodeTimers });
  const stop = echoGuest(g);
  try {
    await waitFor(() => require('node:fs').existsSync(uds), 'the vsock socket');
    for (let i = 0; i < 20; i++) {
      const c = await hostConnect(uds, 52);
      c.sock.write(randomBytes(200_000));
      c.sock.destroy();
    }
    await waitFor(() => g.device.muxer.connectionCount === 0, 'every connection removed');
    const c = await hostConnect(uds, 52);
    const chunks = c.rest;
    c.sock.on('data', (d: Buffer) => chunks.push(d));
    c.sock.write('still alive');
    await waitFor(() => Buffer.concat(chunks).toString() === 'still alive', 'the echo');
    c.sock.destroy();
  } finally {
    stop();
    g.device.dispose();
  }
});
