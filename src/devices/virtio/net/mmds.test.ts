import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMmds } from '../../../mmds/mmds';
import { ACK, arpRequest, parseFrame, PSH, SYN, tcpFrame } from '../../../mmds/testing/frame-builder';
import { FakeClock } from '../../../ratelimit/fake-clock';
import { REGION_B, REGION_C } from '../testing/harness';
import { VNET_HDR_SIZE } from './constants';
import { ethFrame, setupNet, withHeader } from './net-harness';

function setupWithMmds() {
  const clock = new FakeClock();
  const mmds = createMmds({ clock, options: { version: 'V1' } });
  mmds.store.put({ latest: { 'meta-data': { 'ami-id': 'ami-12345678' } } });
  const net = setupNet({ mmds: mmds.createNetworkStack(), clock });
  let txAt = 0;
  /** The guest sends `frame` (Ethernet onwards) on the TX queue. */
  const send = (frame: Uint8Array, flags = 0) => {
    const f = withHeader(frame, flags);
    net.memory.write(REGION_C + txAt, f);
    net.tx.addChain([{ addr: REGION_C + txAt, len: f.length }]);
    txAt = (txAt + 2048) % 0x10000;
    net.driver.notify(1);
  };
  let rxAt = 0;
  let seen = 0;
  /** Gives the device `n` RX buffers and returns the frames (Ethernet onwards) it wrote since last time. */
  const receive = (n = 4) => {
    for (let i = 0; i < n; i++) {
      net.rx.addChain([{ addr: REGION_B + rxAt, len: 2048, write: true }]);
      rxAt = (rxAt + 2048) % 0x10000;
    }
    net.driver.notify(0);
    const out = net.rx.usedSince(seen);
    seen += out.length;
    return out;
  };
  return { ...net, mmds, send, receive };
}

test('MMDS: ARP for 169.254.169.254 is answered by the VMM and never reaches the TAP', () => {
  const { send, receive, backend, memory } = setupWithMmds();
  const used = receive(1);
  assert.equal(used.length, 0);
  send(arpRequest('169.254.169.254'));
  assert.equal(backend.sent.length, 0);
  const [reply] = receive(0);
  assert.ok(reply, 'an RX buffer was used for the reply');
  const frame = parseFrame(memory.read(REGION_B + VNET_HDR_SIZE, reply.len - VNET_HDR_SIZE));
  assert.equal(frame.arp?.op, 2);
  assert.equal(frame.arp?.senderIp, '169.254.169.254');
});

test('MMDS: a GET over TCP, checksum-offloaded, is answered inside the VMM; other traffic goes to the TAP', () => {
  const { send, receive, backend, memory, rx } = setupWithMmds();
  receive(8);
  send(tcpFrame({ dstIp: '169.254.169.254', srcPort: 40000, seq: 100, flags: SYN, mss: 1460 }));
  const synAck = parseFrame(memory.read(REGION_B + VNET_HDR_SIZE, rx.usedElem(0).len - VNET_HDR_SIZE));
  assert.equal(synAck.tcp!.flags & (SYN | ACK), SYN | ACK);
  const theirSeq = synAck.tcp!.seq + 1;
  send(tcpFrame({ dstIp: '169.254.169.254', srcPort: 40000, seq: 101, ack: theirSeq, flags: ACK }));
  send(tcpFrame({ dstIp: '169.254.169.254', srcPort: 40000, seq: 101, ack: theirSeq, flags: ACK | PSH, payload: 'GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n' }));
  const answer = parseFrame(memory.read(REGION_B + 2048 + VNET_HDR_SIZE, rx.usedElem(1).len - VNET_HDR_SIZE));
  const text = answer.tcp!.payload.toString();
  assert.match(text, /^HTTP\/1\.1 200/);
  assert.match(text, /ami-12345678$/);
  assert.equal(backend.sent.length, 0, 'MMDS traffic never reaches the TAP');
  send(ethFrame(60));
  assert.equal(backend.sent.length, 1, 'other frames pass through');
});

test('MMDS: a lost answer is retransmitted by the device timer', () => {
  const { send, receive, rx, clock } = setupWithMmds();
  receive(1);
  send(tcpFrame({ dstIp: '169.254.169.254', srcPort: 40001, seq: 100, flags: SYN, mss: 1460 }));
  assert.equal(rx.usedIdx, 1, 'SYN-ACK delivered');
  receive(2);
  assert.equal(rx.usedIdx, 1, 'nothing more until the retransmission timer');
  clock.advance(299);
  assert.equal(rx.usedIdx, 1);
  clock.advance(200);
  assert.equal(rx.usedIdx, 2, 'the SYN-ACK again, unasked');
});
