import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceType, MmioReg } from '../constants';
import { CONN_BUF_ALLOC, CREDIT_UPDATE_THRESHOLD, HOST_READ_HIGH_WATER } from './connection';
import { FIRST_LOCAL_PORT, HOST_GONE_TIMEOUT_MS, REQUEST_TIMEOUT_MS } from './muxer';
import { encodeHeader, HEADER_SIZE, HOST_CID, Op, Shutdown } from './packet';
import { GUEST_CID, VsockGuest } from './testing';

const ops = (ps: { header: { op: number } }[]) => ps.map((p) => p.header.op);

/** Host connects to guest port 52 and the guest accepts; returns the guest's view of the ports. */
function established(g: VsockGuest, port = 52) {
  const { stream, request } = g.hostConnect(port);
  g.send(Op.RESPONSE, port, request.header.srcPort);
  return { stream, hostPort: request.header.srcPort };
}

test('device id 19, three queues, config space = le64 guest CID', () => {
  const g = new VsockGuest();
  assert.equal(g.driver.read(MmioReg.DEVICE_ID), DeviceType.Vsock);
  assert.equal(g.driver.read(MmioReg.CONFIG), GUEST_CID);
  assert.equal(g.driver.read(MmioReg.CONFIG + 4), 0);
  assert.equal(g.net.listening, '/run/v.sock');
});

test('host-initiated: CONNECT -> REQUEST from port 2^30; RESPONSE -> "OK <host port>"; bytes both ways', () => {
  const g = new VsockGuest();
  const { stream, request } = g.hostConnect(52);
  assert.deepEqual({ ...request.header }, {
    srcCid: HOST_CID, dstCid: GUEST_CID, srcPort: FIRST_LOCAL_PORT, dstPort: 52, len: 0, type: 1, op: Op.REQUEST, flags: 0, bufAlloc: CONN_BUF_ALLOC, fwdCnt: 0,
  });
  assert.equal(stream.text, '', 'no answer before the guest accepts');
  g.send(Op.RESPONSE, 52, FIRST_LOCAL_PORT);
  assert.equal(stream.text, `OK ${FIRST_LOCAL_PORT}\n`);
  stream.send('ping');
  const [rw] = g.received();
  assert.equal(rw.header.op, Op.RW);
  assert.equal(rw.payload.toString(), 'ping');
  g.send(Op.RW, 52, FIRST_LOCAL_PORT, { payload: Buffer.from('pong') });
  assert.equal(stream.text, `OK ${FIRST_LOCAL_PORT}\npong`);
  assert.equal(g.device.metrics.toJson().conns_added, 1);
  // The next host connection gets the next port.
  assert.equal(g.hostConnect(53).request.header.srcPort, FIRST_LOCAL_PORT + 1);
});

test('a host that half-closes right after CONNECT: SHUTDOWN SEND follows the RESPONSE', () => {
  const g = new VsockGuest();
  const stream = g.net.accept();
  stream.send('CONNECT 7\nbye');
  stream.emit('end');
  const [req] = g.received();
  g.send(Op.RESPONSE, 7, req.header.srcPort);
  const r = g.received();
  assert.deepEqual(ops(r), [Op.RW, Op.SHUTDOWN]);
  assert.equal(r[1].header.flags, Shutdown.SEND);
});

test('bytes sent right after the CONNECT line reach the guest once it accepted', () => {
  const g = new VsockGuest();
  const stream = g.net.accept();
  stream.send('CONNECT 7\nearly');
  const [req] = g.received();
  assert.equal(req.header.op, Op.REQUEST);
  g.send(Op.RESPONSE, 7, req.header.srcPort);
  assert.equal(g.received()[0].payload.toString(), 'early');
});

test('a bad first line closes that host connection only; the CONNECT line may come in pieces', () => {
  const g = new VsockGuest();
  const good = established(g);
  for (const bad of ['CONNECT x\n', 'GET / HTTP/1.1\r\n', 'A'.repeat(40)]) {
    const s = g.net.accept();
    s.send(bad);
    assert.ok(s.destroyed, bad);
  }
  assert.deepEqual(g.received(), []);
  const s = g.net.accept();
  s.send('CONN');
  s.send('ECT 9');
  s.send('\n');
  assert.deepEqual(ops(g.received()), [Op.REQUEST]);
  good.stream.send('still here');
  assert.equal(g.received()[0].payload.toString(), 'still here');
});

test('the guest refuses (RST): the host connection is closed; no answer: RST after the timeout', () => {
  const g = new VsockGuest();
  const a = g.hostConnect(52);
  g.send(Op.RST, 52, a.request.header.srcPort);
  assert.ok(a.stream.destroyed);
  assert.equal(a.stream.text, '');
  const b = g.hostConnect(53);
  g.clock.advance(REQUEST_TIMEOUT_MS - 1);
  assert.ok(!b.stream.destroyed);
  g.clock.advance(1);
  assert.ok(b.stream.destroyed);
  assert.deepEqual(ops(g.received()), [Op.RST]);
  const m = g.device.metrics.toJson();
  assert.equal(m.conns_removed, 2);
});

test('guest-initiated: REQUEST to CID 2 port P connects to <uds_path>_P; RESPONSE once it is accepted', () => {
  const g = new VsockGuest();
  g.send(Op.REQUEST, 40000, 5000);
  assert.equal(g.net.connects[0].path, '/run/v.sock_5000');
  assert.deepEqual(g.received(), [], 'no answer until the host listener accepts');
  const host = g.net.connects[0].stream;
  host.emit('connect');
  const [resp] = g.received();
  assert.deepEqual([resp.header.op, resp.header.srcPort, resp.header.dstPort], [Op.RESPONSE, 5000, 40000]);
  g.send(Op.RW, 40000, 5000, { payload: Buffer.from('hello host') });
  assert.equal(host.text, 'hello host');
  host.send('hello guest');
  assert.equal(g.received()[0].payload.toString(), 'hello guest');
});

test('guest-initiated to a port no one listens on: RST', () => {
  const g = new VsockGuest();
  g.send(Op.REQUEST, 40000, 5001);
  const host = g.net.connects[0].stream;
  host.emit('error', Object.assign(new Error('connect ENOENT'), { code: 'ENOENT' }));
  host.destroy();
  const r = g.received();
  assert.deepEqual(ops(r), [Op.RST]);
  assert.equal(r[0].header.dstPort, 40000);
});

test('host to guest: no more than the guest\'s credit; CREDIT_REQUEST, host reading paused; a credit update resumes', () => {
  const g = new VsockGuest();
  const { stream, request: { header: { srcPort: hostPort } } } = g.hostConnect(52);
  g.send(Op.RESPONSE, 52, hostPort, { bufAlloc: 8192, fwdCnt: 0 });
  stream.send(Buffer.alloc(20000, 1));
  const first = g.received();
  assert.deepEqual(ops(first), [Op.RW, Op.RW, Op.RW, Op.CREDIT_REQUEST]);
  assert.equal(first.reduce((n, p) => n + p.payload.length, 0), 8192);
  assert.ok(first.every((p) => p.payload.length <= 4096 - HEADER_SIZE));
  assert.ok(stream.paused, 'the host socket is not read while the guest has no room');
  g.send(Op.CREDIT_UPDATE, 52, hostPort, { bufAlloc: 8192, fwdCnt: 8192 });
  const more = g.received();
  assert.equal(more.filter((p) => p.header.op === Op.RW).reduce((n, p) => n + p.payload.length, 0), 8192);
  g.send(Op.CREDIT_UPDATE, 52, hostPort, { bufAlloc: 8192, fwdCnt: 16384 });
  const rest = g.received();
  assert.equal(rest.reduce((n, p) => n + p.payload.length, 0), 20000 - 16384);
  assert.ok(!stream.paused);
});

test('host reading stops at the high-water mark when the guest posts no rx buffers', () => {
  const g = new VsockGuest();
  const { stream, request: { header: { srcPort: hostPort } } } = g.hostConnect(52);
  g.send(Op.RESPONSE, 52, hostPort);
  g.received(false); // use up the 16 rx buffers, post no new ones
  stream.send(Buffer.alloc(2 * HOST_READ_HIGH_WATER));
  assert.ok(stream.paused);
  assert.equal(g.received(false).length, 16);
  g.postRx(16);
  assert.ok(g.received().length > 0);
});

test('guest to host: fwd_cnt advances as the host takes bytes; a credit update follows a quarter of the buffer', () => {
  const g = new VsockGuest();
  const { stream, hostPort } = established(g);
  stream.autoFlush = false;
  const chunk = Buffer.alloc(4000, 7);
  let sent = 0;
  while (sent < CREDIT_UPDATE_THRESHOLD) {
    g.send(Op.RW, 52, hostPort, { payload: chunk });
    sent += chunk.length;
  }
  assert.deepEqual(g.received(), [], 'nothing forwarded yet: no credit update');
  stream.flush();
  const [upd] = g.received();
  assert.equal(upd.header.op, Op.CREDIT_UPDATE);
  assert.equal(upd.header.fwdCnt, sent);
  assert.equal(upd.header.bufAlloc, CONN_BUF_ALLOC);
  g.send(Op.CREDIT_REQUEST, 52, hostPort);
  assert.deepEqual(ops(g.received()), [Op.CREDIT_UPDATE]);
});

test('a guest sending past its credit gets RST; that connection only', () => {
  const g = new VsockGuest();
  const a = established(g, 52);
  const b = established(g, 53);
  a.stream.autoFlush = false;
  const chunk = Buffer.alloc(4000);
  for (let sent = 0; sent + chunk.length <= CONN_BUF_ALLOC; sent += chunk.length) g.send(Op.RW, 52, a.hostPort, { payload: chunk });
  assert.deepEqual(g.received(), []);
  g.send(Op.RW, 52, a.hostPort, { payload: chunk });
  assert.deepEqual(ops(g.received()), [Op.RST]);
  assert.ok(a.stream.destroyed);
  g.send(Op.RW, 53, b.hostPort, { payload: Buffer.from('ok') });
  assert.equal(b.stream.text.endsWith('ok'), true);
});

test('shutdown: guest SEND -> host write side ended; guest BOTH -> RST, connection gone; host FIN -> SHUTDOWN SEND after its bytes', () => {
  const g = new VsockGuest();
  const a = established(g, 52);
  g.send(Op.SHUTDOWN, 52, a.hostPort, { flags: Shutdown.SEND });
  assert.ok(a.stream.ended);
  a.stream.send('reply after half close');
  assert.equal(g.received()[0].payload.toString(), 'reply after half close');
  g.send(Op.SHUTDOWN, 52, a.hostPort, { flags: Shutdown.RCV });
  assert.deepEqual(ops(g.received()), [Op.RST]);
  assert.equal(g.device.muxer.connectionCount, 0);
  const m = g.device.metrics.toJson();
  assert.equal(m.conns_removed, 1);
  assert.equal(m.conns_killed, 0);

  const b = established(g, 53);
  b.stream.send('last words');
  b.stream.emit('end');
  const r = g.received();
  assert.deepEqual(ops(r), [Op.RW, Op.SHUTDOWN]);
  assert.equal(r[1].header.flags, Shutdown.SEND);
  b.stream.emit('close');
  g.send(Op.RW, 53, b.hostPort, { payload: Buffer.from('x') });
  assert.equal(b.stream.text.endsWith('x'), true, 'the guest may still send after the host half-closed');
});

test('a host that closes while the guest takes nothing: RST after 2 s without progress; a guest still reading keeps it', () => {
  const g = new VsockGuest();
  // The guest gives 1 KiB of credit and never reads it: 3 KiB of the host's 4 KiB stay held.
  const { stream: stuck, request } = g.hostConnect(52);
  g.send(Op.RESPONSE, 52, request.header.srcPort, { bufAlloc: 1024, fwdCnt: 0 });
  stuck.send(Buffer.alloc(4096, 1));
  assert.deepEqual(ops(g.received()), [Op.RW, Op.CREDIT_REQUEST]);
  stuck.emit('end');
  stuck.emit('close');
  g.clock.advance(HOST_GONE_TIMEOUT_MS - 1);
  assert.equal(g.device.muxer.connectionCount, 1);
  g.clock.advance(1);
  assert.deepEqual(ops(g.received()), [Op.RST]);
  assert.equal(g.device.muxer.connectionCount, 0, 'the slot is free again');
  assert.equal(g.device.metrics.toJson().conns_killed, 1);

  const { stream: slow, request: r2 } = g.hostConnect(53);
  g.send(Op.RESPONSE, 53, r2.header.srcPort, { bufAlloc: 1024, fwdCnt: 0 });
  slow.send(Buffer.alloc(4096, 2));
  slow.emit('end');
  slow.emit('close');
  g.clock.advance(HOST_GONE_TIMEOUT_MS - 1);
  g.send(Op.CREDIT_UPDATE, 53, r2.header.srcPort, { bufAlloc: 1024, fwdCnt: 1024 }); // the guest read some
  g.clock.advance(HOST_GONE_TIMEOUT_MS);
  assert.equal(g.device.muxer.connectionCount, 1, 'progress re-arms the wait');
  g.clock.advance(HOST_GONE_TIMEOUT_MS);
  assert.equal(g.device.muxer.connectionCount, 0);
});

test('a host peer that fails (EPIPE) ends its connection with RST; others keep working', () => {
  const g = new VsockGuest();
  const a = established(g, 52);
  const b = established(g, 53);
  a.stream.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
  const r = g.received();
  assert.deepEqual(ops(r), [Op.RST]);
  assert.equal(r[0].header.srcPort, a.hostPort);
  b.stream.send('fine');
  assert.equal(g.received()[0].payload.toString(), 'fine');
  assert.equal(g.device.metrics.toJson().tx_write_fails, 1);
  assert.equal(g.device.metrics.toJson().conns_killed, 1);
});

test('1023 connections at most: the next guest REQUEST gets RST, the next host connection is closed', () => {
  const g = new VsockGuest();
  for (let i = 0; i < 1023; i++) g.send(Op.REQUEST, 10000 + i, 6000);
  assert.equal(g.device.muxer.connectionCount, 1023);
  assert.deepEqual(g.received(), []);
  g.send(Op.REQUEST, 20000, 6000);
  assert.deepEqual(ops(g.received()), [Op.RST]);
  const s = g.net.accept();
  assert.ok(s.destroyed);
  assert.equal(g.net.connects.length, 1023);
});

test('malformed tx chains are returned and counted; packets not for the host are dropped; strays get RST', () => {
  const g = new VsockGuest();
  g.sendRaw(Buffer.alloc(20));
  const h = encodeHeader({ srcCid: GUEST_CID, dstCid: HOST_CID, srcPort: 1, dstPort: 2, len: 100, type: 1, op: Op.RW, flags: 0, bufAlloc: 0, fwdCnt: 0 });
  g.sendRaw(Buffer.concat([h, Buffer.alloc(10)]));
  assert.equal(g.device.metrics.txQueueEventFails, 2);
  assert.equal(g.tx.usedIdx, 2, 'both chains returned');
  g.send(Op.REQUEST, 1, 2, { header: { dstCid: 7 } });
  g.send(Op.REQUEST, 1, 2, { header: { srcCid: 9 } });
  assert.equal(g.net.connects.length, 0);
  assert.deepEqual(g.received(), []);
  g.send(Op.REQUEST, 1, 2, { header: { type: 2 } }); // seqpacket
  g.send(Op.RW, 1, 3, { payload: Buffer.from('?') }); // no such connection
  g.send(Op.RST, 1, 4); // RST for nothing: no answer
  const r = g.received();
  assert.deepEqual(ops(r), [Op.RST, Op.RST]);
  assert.deepEqual(r.map((p) => [p.header.srcPort, p.header.dstPort]), [[2, 1], [3, 1]]);
  assert.equal(g.net.connects.length, 0);
  assert.ok(g.log.warnings.length >= 4);
});

test('an rx buffer too small for a header is returned unused; a driver reset closes every host socket', () => {
  const g = new VsockGuest({ rxBuffers: 0 });
  const a = g.net.accept();
  g.rx.addChain([{ addr: 0x10000, len: 44, write: true }]);
  a.send('CONNECT 1\n');
  assert.equal(g.rx.usedSince(0)[0].len, 0);
  assert.equal(g.device.metrics.rxQueueEventFails, 1);
  g.driver.write(MmioReg.STATUS, 0);
  assert.ok(a.destroyed);
  assert.equal(g.device.muxer.connectionCount, 0);
});

test('dispose stops listening and closes host sockets', () => {
  const g = new VsockGuest();
  const a = established(g);
  const pending = g.net.accept();
  g.device.dispose();
  assert.ok(g.net.closed && a.stream.destroyed && pending.destroyed);
});

test('random guest packets (ops, ports, flags, credit, lengths) never throw and leave the device serving', () => {
  const g = new VsockGuest({ maxConnections: 8 });
  let seed = 12345;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const hosts = Array.from({ length: 4 }, (_, i) => g.hostConnect(100 + i));
  for (let i = 0; i < 3000; i++) {
    const op = rnd(9);
    const src = 100 + rnd(6);
    const dst = rnd(2) === 0 ? hosts[rnd(4)].request.header.srcPort : 5000 + rnd(3);
    const payload = Buffer.alloc(rnd(3) === 0 ? rnd(3000) : 0, i & 0xff);
    g.send(op, src, dst, { payload, flags: rnd(8), bufAlloc: rnd(2) ? 256 * 1024 : rnd(100), fwdCnt: rnd(1 << 20) });
    if (rnd(10) === 0) hosts[rnd(4)].stream.send(Buffer.alloc(rnd(9000)));
    if (rnd(50) === 0) g.net.connects[rnd(Math.max(1, g.net.connects.length))]?.stream.emit('connect');
    g.received();
  }
  assert.ok(g.device.muxer.connectionCount <= 8);
  assert.equal(g.log.errors.filter((e) => /failed/.test(e)).length, 0, g.log.errors.join('\n'));
  const fresh = g.hostConnect(999);
  assert.equal(fresh.request?.header.op, Op.REQUEST);
});
