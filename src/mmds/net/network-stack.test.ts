import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { FakeClock } from '../../ratelimit/fake-clock';
import { type Mmds, createMmds } from '../mmds';
import type { MmdsOptions } from '../options';
import { ACK, FIN, GUEST_MAC, PSH, RST, SYN, arpRequest, parseFrame, tcpFrame } from '../testing/frame-builder';
import { TestTcpClient } from '../testing/tcp-client';
import { MmdsNetworkStack } from './network-stack';
import { MAX_RETRANSMISSIONS, RETRANSMIT_TIMEOUT_MS } from './tcp-connection';

const MMDS_IP = '169.254.169.254';

function setup(options: Partial<MmdsOptions> = {}): Mmds & { clock: FakeClock; stack: MmdsNetworkStack } {
  const clock = new FakeClock(1_000);
  const mmds = createMmds({ options, clock });
  mmds.store.put({ latest: { 'meta-data': { 'ami-id': 'ami-12345678', 'reservation-id': 'r-fea54097', big: 'x'.repeat(3000) } } });
  return { ...mmds, clock, stack: mmds.createNetworkStack() };
}

function takeFrame(stack: MmdsNetworkStack): Uint8Array {
  const out = new Uint8Array(1526);
  return out.subarray(0, stack.writeNextFrame(out));
}

const response = (client: TestTcpClient): string => client.received.toString('latin1');

describe('MmdsNetworkStack: ARP', () => {
  it('answers a request for the MMDS address from the MMDS MAC', () => {
    const { stack, metrics } = setup();
    assert.equal(stack.detour(arpRequest(MMDS_IP)), true);
    assert.equal(stack.hasPending(), true);
    const out = new Uint8Array(1526);
    const n = stack.writeNextFrame(out);
    assert.equal(n, 42);
    const reply = parseFrame(out.subarray(0, n));
    assert.deepEqual(reply.dstMac, GUEST_MAC);
    assert.deepEqual([...reply.srcMac], [0x06, 0x01, 0x23, 0x45, 0x67, 0x01]);
    assert.deepEqual(reply.arp, {
      op: 2, senderMac: reply.srcMac, senderIp: MMDS_IP, targetMac: GUEST_MAC, targetIp: '192.168.0.2',
    });
    assert.equal(stack.hasPending(), false);
    assert.deepEqual([metrics.rx_count, metrics.rx_accepted, metrics.tx_frames, metrics.tx_bytes], [1, 1, 1, 42]);
  });

  it('leaves ARP for other addresses, and ARP replies, to the TAP', () => {
    const { stack } = setup();
    assert.equal(stack.detour(arpRequest('192.168.0.1')), false);
    const reply = arpRequest(MMDS_IP);
    reply[21] = 2;
    assert.equal(stack.detour(reply), false);
    assert.equal(stack.hasPending(), false);
  });

  it('answers at a configured address', () => {
    const { stack } = setup({ ipv4Address: '169.254.170.2' });
    assert.equal(stack.detour(arpRequest(MMDS_IP)), false);
    assert.equal(stack.detour(arpRequest('169.254.170.2')), true);
    assert.equal(parseFrame(takeFrame(stack)).arp!.senderIp, '169.254.170.2');
    const client = new TestTcpClient(stack, 40000, '169.254.170.2');
    client.connect();
    client.write('GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n');
    client.pump();
    assert.match(response(client), /\r\n\r\nami-12345678$/);
  });
});

describe('MmdsNetworkStack: TCP and HTTP', () => {
  it('handshake, GET, FIN both ways: the whole exchange on frames', () => {
    const { stack, metrics } = setup();
    const client = new TestTcpClient(stack, 40001);
    const synAck = client.connect(1460);
    assert.equal(synAck.tcp!.flags, SYN | ACK);
    assert.equal(synAck.tcp!.ack, 1001);
    assert.equal(synAck.tcp!.mss, 1460);
    assert.equal(synAck.tcp!.srcIp, MMDS_IP);
    assert.equal(synAck.tcp!.dstPort, 40001);
    assert.ok(synAck.tcp!.ipChecksumOk && synAck.tcp!.tcpChecksumOk);
    assert.deepEqual(synAck.dstMac, GUEST_MAC);

    client.write('GET /latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n');
    client.pump();
    assert.equal(response(client),
      'HTTP/1.1 200 \r\nServer: Firecracker API\r\nConnection: keep-alive\r\nContent-Type: text/plain\r\nContent-Length: 25\r\n\r\nami-id\nbig\nreservation-id');
    for (const f of client.frames) assert.ok(f.tcp!.ipChecksumOk && f.tcp!.tcpChecksumOk, 'every frame checksums');

    client.write('', ACK | FIN);
    client.seq = (client.seq + 1) >>> 0;
    const [finAck] = client.drain();
    assert.equal(finAck.tcp!.flags & FIN, FIN, 'MMDS closes its side once the guest closed and all is answered');
    assert.equal(finAck.tcp!.ack, client.seq);
    client.absorb([finAck]);
    assert.equal(stack.connectionCount, 0);
    assert.equal(stack.hasPending(), false);
    assert.deepEqual([metrics.connections_created, metrics.connections_destroyed], [1, 1]);
  });

  it('a request split over several segments is assembled; requests on one connection are served in turn', () => {
    const { stack } = setup();
    const client = new TestTcpClient(stack, 40002);
    client.connect();
    for (const piece of ['GE', 'T /latest/meta-data/ami-id HT', 'TP/1.1\r\n', '\r\n']) {
      client.write(piece);
      client.pump();
    }
    assert.match(response(client), /\r\n\r\nami-12345678$/);
    client.received = Buffer.alloc(0);
    client.write('GET /latest/meta-data/reservation-id HTTP/1.0\r\n\r\nGET /latest/meta-data/ami-id HTTP/1.0\r\n\r\n');
    client.pump();
    const text = response(client);
    assert.match(text, /^HTTP\/1\.0 200 [\s\S]*r-fea54097HTTP\/1\.0 200 [\s\S]*ami-12345678$/);
  });

  it('V2 token flow over TCP: 401 without a token, a token from PUT, then data', () => {
    const { stack } = setup({ version: 'V2' });
    const client = new TestTcpClient(stack, 40003);
    client.connect();
    client.write('GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n');
    client.pump();
    assert.match(response(client), /^HTTP\/1\.1 401 [\s\S]*No MMDS token provided/);
    client.received = Buffer.alloc(0);
    client.write('PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n');
    client.pump();
    const put = response(client);
    assert.match(put, /X-metadata-token-ttl-seconds: 60\r\n/);
    const token = put.split('\r\n\r\n')[1];
    client.received = Buffer.alloc(0);
    client.write(`GET /latest/meta-data/ami-id HTTP/1.1\r\nX-metadata-token: ${token}\r\n\r\n`);
    client.pump();
    assert.match(response(client), /^HTTP\/1\.1 200 [\s\S]*\r\n\r\nami-12345678$/);
  });

  it('segments a response to the peer MSS and never sends past its window', () => {
    const { stack } = setup();
    const client = new TestTcpClient(stack, 40004);
    client.connect(536);
    client.send(ACK | PSH, 'GET /latest/meta-data/big HTTP/1.1\r\n\r\n', { window: 1000 });
    client.seq += 'GET /latest/meta-data/big HTTP/1.1\r\n\r\n'.length;
    const first = client.drain().filter((f) => f.tcp!.payload.length > 0);
    assert.deepEqual(first.map((f) => f.tcp!.payload.length), [536, 464], 'two segments fill the 1000-byte window');
    client.absorb(first, false);
    client.send(ACK, '', { window: 1000 });
    let total = client.received.length;
    for (let round = 0; round < 20 && stack.hasPending(); round++) {
      const frames = client.drain();
      for (const f of frames) assert.ok(f.tcp!.payload.length <= 536);
      client.absorb(frames, false);
      client.send(ACK, '', { window: 1000 });
      total = client.received.length;
    }
    const text = response(client);
    assert.equal(total, text.length);
    assert.match(text, /Content-Length: 3000\r\n\r\nx{3000}$/);
  });

  it('drops an out-of-order segment, re-acknowledges and counts it', () => {
    const { stack, metrics } = setup();
    const client = new TestTcpClient(stack, 40005);
    client.connect();
    client.send(ACK | PSH, 'T / HTTP/1.1\r\n\r\n', { seq: client.seq + 2 });
    const [dupAck] = client.drain();
    assert.equal(dupAck.tcp!.flags, ACK);
    assert.equal(dupAck.tcp!.ack, client.seq, 'still waiting for the first byte');
    assert.equal(metrics.rx_accepted_unusual, 1);
    client.write('GET / HTTP/1.1\r\n\r\n');
    client.pump();
    assert.match(response(client), /\r\n\r\nlatest\/$/);
  });

  it('retransmits unacknowledged data after the timeout, and resets after too many', () => {
    const { stack, clock } = setup();
    const client = new TestTcpClient(stack, 40006);
    client.connect();
    client.write('GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n');
    const [data] = client.drain().filter((f) => f.tcp!.payload.length > 0);
    assert.equal(stack.hasPending(), false);
    assert.equal(stack.nextDeadlineMs(), 1_000 + RETRANSMIT_TIMEOUT_MS);
    clock.advance(RETRANSMIT_TIMEOUT_MS);
    assert.equal(stack.hasPending(), true);
    const [again] = client.drain();
    assert.equal(again.tcp!.seq, data.tcp!.seq);
    assert.deepEqual(again.tcp!.payload, data.tcp!.payload);
    for (let i = 1; i < MAX_RETRANSMISSIONS; i++) {
      clock.advance(RETRANSMIT_TIMEOUT_MS);
      assert.equal(client.drain()[0].tcp!.seq, data.tcp!.seq);
    }
    clock.advance(RETRANSMIT_TIMEOUT_MS);
    const [rst] = client.drain();
    assert.equal(rst.tcp!.flags & RST, RST);
    assert.equal(stack.connectionCount, 0);
  });

  it('acknowledges a keep-alive probe (one byte behind, no data)', () => {
    const { stack } = setup();
    const client = new TestTcpClient(stack, 40012);
    client.connect();
    client.send(ACK, '', { seq: client.seq - 1 });
    const [ack] = client.drain();
    assert.deepEqual([ack.tcp!.flags, ack.tcp!.ack], [ACK, client.seq]);
  });

  it('resends a lost SYN-ACK when the SYN is retransmitted', () => {
    const { stack } = setup();
    const client = new TestTcpClient(stack, 40007);
    client.send(SYN, '', { mss: 1460 });
    const [first] = client.drain();
    client.send(SYN, '', { mss: 1460 });
    const [second] = client.drain();
    assert.equal(second.tcp!.flags, SYN | ACK);
    assert.equal(second.tcp!.seq, first.tcp!.seq);
    assert.equal(stack.connectionCount, 1);
  });

  it('answers a request whose Content-Length lies at once with Invalid request', () => {
    const { stack } = setup();
    const client = new TestTcpClient(stack, 40008);
    client.connect();
    client.write('GET /latest HTTP/1.1\r\nContent-Length: 100\r\n\r\n123456789');
    client.pump();
    assert.match(response(client), /^HTTP\/1\.1 400 [\s\S]*\r\n\r\nInvalid request\.$/);
  });

  it('resets a connection whose request outgrows the receive buffer', () => {
    const { stack } = setup();
    const client = new TestTcpClient(stack, 40009);
    client.connect();
    for (let i = 0; i < 3; i++) client.write(`X-Filler: ${'a'.repeat(1000)}`);
    const frames = client.drain();
    assert.ok(frames.some((f) => f.tcp!.flags & RST));
    assert.equal(stack.connectionCount, 0);
  });

  it('answers a segment for no connection with a reset', () => {
    const { stack, metrics } = setup();
    stack.detour(tcpFrame({ dstIp: MMDS_IP, srcPort: 40010, seq: 5, ack: 777, flags: ACK, payload: 'hi' }));
    const [rst] = new TestTcpClient(stack, 40010).drain();
    assert.deepEqual([rst.tcp!.flags, rst.tcp!.seq, rst.tcp!.dstPort], [RST, 777, 40010]);
    stack.detour(tcpFrame({ dstIp: MMDS_IP, srcPort: 40010, seq: 5, flags: RST }));
    assert.equal(stack.hasPending(), false, 'a reset is never answered');
    assert.equal(metrics.rx_accepted_unusual, 2);
  });

  it('holds at most 30 connections; a new one replaces one silent for 10 s, else is reset', () => {
    const { stack, clock, metrics } = setup();
    for (let i = 0; i < 30; i++) new TestTcpClient(stack, 41000 + i).connect();
    assert.equal(stack.connectionCount, 30);
    const late = new TestTcpClient(stack, 42000);
    late.send(SYN, '', { mss: 1460 });
    const [refused] = late.drain();
    assert.equal(refused.tcp!.flags & RST, RST);
    assert.equal(stack.connectionCount, 30);
    clock.advance(10_001);
    const later = new TestTcpClient(stack, 42001);
    later.connect();
    later.write('GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n');
    later.pump();
    assert.match(response(later), /ami-12345678$/);
    assert.equal(stack.connectionCount, 30);
    assert.equal(metrics.connections_destroyed, 1);
  });

  it('cuts data to a small RX buffer, and keeps a frame that does not fit at all', () => {
    const { stack, metrics } = setup();
    const client = new TestTcpClient(stack, 40011, MMDS_IP, 1000, 100);
    client.connect();
    assert.equal(stack.writeNextFrame(new Uint8Array(40)), 0);
    assert.equal(metrics.tx_errors, 0, 'a small buffer with nothing to send is no error');
    client.write('GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n');
    assert.equal(stack.writeNextFrame(new Uint8Array(40)), 0);
    assert.equal(metrics.tx_errors, 1);
    assert.equal(stack.hasPending(), true);
    client.pump();
    for (const f of client.frames) assert.ok(f.tcp!.payload.length <= 100 - 54);
    assert.match(response(client), /ami-12345678$/);
  });
});

describe('MmdsNetworkStack: hostile frames', () => {
  it('a failure inside MMDS costs the connection, not the VMM', () => {
    const clock = new FakeClock();
    const stack = new MmdsNetworkStack({ respond: () => { throw new Error('bug'); }, clock });
    const client = new TestTcpClient(stack, 43500);
    client.connect();
    assert.doesNotThrow(() => client.write('GET / HTTP/1.1\r\n\r\n'));
    assert.equal(stack.connectionCount, 0);
    assert.equal(stack.metrics.rx_accepted_err, 1);
  });

  it('random bytes never throw; frames not for MMDS go to the TAP', () => {
    const { stack } = setup();
    for (let i = 0; i < 3000; i++) {
      const frame = crypto.randomBytes(i % 200);
      assert.doesNotThrow(() => stack.detour(frame));
    }
    while (stack.hasPending()) stack.writeNextFrame(new Uint8Array(1526));
  });

  it('every truncation of valid frames is handled without throwing', () => {
    const { stack, metrics } = setup();
    const frames = [
      arpRequest(MMDS_IP),
      tcpFrame({ dstIp: MMDS_IP, srcPort: 43000, seq: 1, flags: SYN, mss: 1460 }),
      tcpFrame({ dstIp: MMDS_IP, srcPort: 43001, seq: 1, ack: 1, flags: ACK | PSH, payload: 'GET / HTTP/1.1\r\n\r\n' }),
    ];
    for (const frame of frames) {
      for (let len = 0; len < frame.length; len++) assert.doesNotThrow(() => stack.detour(frame.subarray(0, len)));
    }
    assert.ok(metrics.rx_bad_eth >= 14 * frames.length);
    assert.ok(metrics.rx_accepted_err > 0);
    assert.equal(stack.connectionCount, 0, 'no truncated SYN opened a connection');
  });

  it('drops and counts bad checksums, fragments, other protocols and ports, but consumes them', () => {
    const { stack, metrics } = setup();
    const syn = (port = 80): Uint8Array => tcpFrame({ dstIp: MMDS_IP, srcPort: 43100, dstPort: port, seq: 1, flags: SYN });
    const badIp = syn();
    badIp[24] ^= 0xff;
    const badTcp = syn();
    badTcp[50] ^= 0xff;
    const fragment = syn();
    fragment[20] = 0x20; // more fragments
    const udp = syn();
    udp[23] = 17;
    const lyingLength = syn();
    lyingLength[17] = 0xff; // total length beyond the frame
    const badOffset = syn();
    badOffset[46] = 0xf0; // data offset 60 bytes in a 20-byte header
    for (const frame of [badIp, badTcp, fragment, udp, lyingLength, badOffset, syn(22)]) {
      assert.equal(stack.detour(frame), true);
    }
    assert.equal(metrics.rx_accepted_err, 7);
    assert.equal(stack.connectionCount, 0);
    assert.equal(stack.hasPending(), false);
  });

  it('takes a segment whose checksum the guest offloaded (partial) when the device says so', () => {
    const { stack, metrics } = setup();
    const syn = tcpFrame({ dstIp: MMDS_IP, srcPort: 43400, seq: 1, flags: SYN, mss: 1460 });
    // what Linux leaves with checksum offload: the folded pseudo-header sum, not the full checksum
    syn[50] = 0x12;
    syn[51] = 0x34;
    assert.equal(stack.detour(syn), true);
    assert.equal(metrics.rx_accepted_err, 1, 'without the flag the checksum is checked');
    assert.equal(stack.detour(syn, { checksumPartial: true }), true);
    assert.equal(stack.connectionCount, 1);
    const badIp = Uint8Array.from(syn);
    badIp[24] ^= 0xff;
    assert.equal(stack.detour(badIp, { checksumPartial: true }), true);
    assert.equal(metrics.rx_accepted_err, 2, 'the IPv4 header checksum is still checked');
  });

  it('ignores Ethernet padding after the IPv4 packet (short frames are padded to 60 bytes)', () => {
    const { stack, metrics } = setup();
    const client = new TestTcpClient(stack, 43300);
    client.connect();
    const ack = tcpFrame({ dstIp: MMDS_IP, srcPort: 43300, seq: client.seq, ack: client.rcvNxt, flags: ACK | PSH, payload: 'GET / HTTP/1.1\r\n\r\n' });
    const padded = new Uint8Array(ack.length + 6);
    padded.set(ack);
    padded.fill(0xee, ack.length);
    assert.equal(stack.detour(padded), true);
    client.seq += 18;
    client.pump();
    assert.match(response(client), /\r\n\r\nlatest\/$/);
    assert.equal(metrics.rx_accepted_err, 0);
  });

  it('accepts IPv4 options and tolerates malformed TCP options', () => {
    const { stack } = setup();
    const plain = tcpFrame({ dstIp: MMDS_IP, srcPort: 43200, seq: 1, flags: SYN });
    // rebuild with a 4-byte IPv4 option (NOPs + EOL): IHL 6
    const withOption = new Uint8Array(plain.length + 4);
    withOption.set(plain.subarray(0, 34));
    withOption.set([1, 1, 1, 0], 34);
    withOption.set(plain.subarray(34), 38);
    withOption[14] = 0x46;
    const total = ((withOption[16] << 8) | withOption[17]) + 4;
    withOption[16] = total >> 8;
    withOption[17] = total & 0xff;
    withOption[24] = 0;
    withOption[25] = 0;
    let sum = 0;
    for (let i = 14; i < 38; i += 2) sum += (withOption[i] << 8) | withOption[i + 1];
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    withOption[24] = (~sum >> 8) & 0xff;
    withOption[25] = ~sum & 0xff;
    assert.equal(stack.detour(withOption), true);
    assert.equal(stack.connectionCount, 1);
    assert.equal(new TestTcpClient(stack, 43200).drain()[0].tcp!.mss, 1460);
  });

  it('random but well-formed segments on live connections never throw and stay within bounds (fuzz)', () => {
    const { stack, clock } = setup();
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const clients = Array.from({ length: 40 }, (_, i) => new TestTcpClient(stack, 44000 + i));
    for (const c of clients.slice(0, 10)) c.connect();
    const pieces = ['GET / HTTP/1.1\r\n\r\n', 'PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 5\r\n\r\n', 'garbage\n\n', 'x'.repeat(1400), ''];
    for (let i = 0; i < 5000; i++) {
      const c = clients[rand(clients.length)];
      const flags = [SYN, ACK, ACK | PSH, ACK | FIN, RST, SYN | ACK, FIN, 0, ACK | RST][rand(9)];
      const seq = rand(4) === 0 ? rand(0xffffffff) : (c.seq + rand(3000) - 1500) >>> 0;
      assert.doesNotThrow(() => c.send(flags, pieces[rand(pieces.length)], { seq, window: rand(65536), mss: rand(2) ? rand(2000) : undefined }));
      if (rand(3) === 0) c.absorb(c.drain(), rand(2) === 0);
      if (rand(50) === 0) clock.advance(rand(12_000));
      assert.ok(stack.connectionCount <= 30);
    }
  });
});
