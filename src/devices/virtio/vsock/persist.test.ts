/**
 * vsock across a snapshot, as Firecracker does it: the host side's connections are not kept.
 * Saving closes them and gives the driver a transport-reset event (the source VM's guest drops
 * its connections too); a restore onto a fresh device over the same guest memory sends the
 * event again once the VM runs, and new connections work both ways.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../ratelimit/fake-clock';
import { fromJsonValue, toJsonValue } from '../../../snapshot/plain-data';
import { MmioReg, Status } from '../constants';
import { MmioTransport, TransportState } from '../mmio-transport';
import { MockMmioDriver } from '../testing/mock-mmio-driver';
import { RecordingLog, REGION_C, SpyLine } from '../testing/harness';
import { VirtioVsock, VsockSavedState, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET } from './device';
import { FIRST_LOCAL_PORT } from './muxer';
import { Op } from './packet';
import { FakeNet, GUEST_CID, VsockGuest } from './testing';

function throughFile<T>(value: T): T {
  return fromJsonValue(JSON.parse(JSON.stringify(toJsonValue(value)))) as T;
}

/** The driver's event buffers: `n` 4-byte buffers on the event queue. */
function postEvents(g: VsockGuest, n: number, at = REGION_C + 0x8000): number[] {
  const heads: number[] = [];
  for (let i = 0; i < n; i++) heads.push(g.ev.addChain([{ addr: at + i * 8, len: 8, write: true }]));
  g.driver.notify(2);
  return heads;
}

test('a snapshot mid-connection: host sockets close, the guest gets TRANSPORT_RESET; after a restore it gets it again and new connections work', () => {
  const g = new VsockGuest();
  const [ev0, ev1] = postEvents(g, 2);
  // One host-initiated connection, established and carrying bytes.
  const { stream, request } = g.hostConnect(52);
  g.send(Op.RESPONSE, 52, request.header.srcPort);
  stream.send('mid-stream');
  assert.equal(g.received()[0].payload.toString(), 'mid-stream');
  assert.equal(g.device.muxer.connectionCount, 1);
  const irqsBefore = g.line.count;

  g.device.sendTransportReset(); // prepareSave
  assert.ok(stream.destroyed, 'the host side is closed, not kept');
  assert.equal(g.device.muxer.connectionCount, 0);
  assert.deepEqual(g.ev.usedSince(0), [{ id: ev0, len: 4 }]);
  assert.equal(g.memory.read(REGION_C + 0x8000, 4).readUInt32LE(0), VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
  assert.ok(g.line.count > irqsBefore, 'the driver is interrupted');
  assert.deepEqual(g.received(), [], 'no packets: the reset is the event, not RSTs');

  // The driver never saw the first event's interrupt (raised after KVM's state was saved): its
  // used_event still asks for the first entry, which suppresses a plain signal for the second.
  g.ev.usedEvent = 0;
  const transportState = throughFile(g.transport.saveState());
  const deviceState = throughFile(g.device.saveState() as VsockSavedState);
  g.device.dispose();

  // The restore: a fresh device (its own host network and clock) over the same memory.
  const net = new FakeNet();
  const clock = new FakeClock();
  const log = new RecordingLog();
  const line = new SpyLine();
  const fresh = new VirtioVsock({ guestCid: GUEST_CID, udsPath: '/run/v2.sock', net, log, host: log, timers: clock });
  fresh.listen();
  const transport = new MmioTransport(fresh, g.memory, line, { name: 'virtio-vsock', log });
  fresh.restoreState(deviceState);
  transport.restoreState(transportState as TransportState);
  assert.equal(new MockMmioDriver(transport).read(MmioReg.STATUS) & Status.DRIVER_OK, Status.DRIVER_OK);
  assert.equal(g.ev.usedIdx, 1, 'not during the restore: the vCPUs do not exist yet');
  clock.advance(0);
  assert.deepEqual(g.ev.usedSince(1), [{ id: ev1, len: 4 }], 'the restored VM gets its own reset');
  assert.equal(line.count, 1, 'interrupted once although used_event suppresses it');
  clock.advance(1000);
  assert.equal(g.ev.usedIdx, 2, 'once');

  // A new host connection on the (overridden) socket reaches the guest, continuing the rings.
  const s2 = net.accept();
  s2.send('CONNECT 52\n');
  const [req] = g.received();
  assert.deepEqual([req.header.op, req.header.srcPort, req.header.dstPort], [Op.REQUEST, FIRST_LOCAL_PORT, 52], 'a REQUEST in the next rx buffer');
  assert.equal(net.listening, '/run/v2.sock');
  assert.equal(fresh.muxer.connectionCount, 1);
  fresh.dispose();
});

test('no event buffer for the reset: counted and logged, host connections still closed', () => {
  const g = new VsockGuest();
  const { stream, request } = g.hostConnect(7);
  g.send(Op.RESPONSE, 7, request.header.srcPort);
  g.device.sendTransportReset();
  assert.ok(stream.destroyed);
  assert.equal(g.device.metrics.evQueueEventFails, 1);
  assert.match(g.log.warnings.join('\n'), /no event buffer for the transport-reset event/);
});

test('a saved state with another CID than the configured device is refused', () => {
  const g = new VsockGuest();
  assert.throws(() => g.device.restoreState({ guestCid: GUEST_CID + 1 }), (e: Error & { code?: string }) => e.code === 'ESNAPSHOTDEVICE' && /guest CID 4 is not the configured 3/.test(e.message));
});
