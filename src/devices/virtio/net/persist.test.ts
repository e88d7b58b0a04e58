/**
 * A network interface saved mid-I/O (an RX frame waiting with one guest buffer reserved, a TX
 * frame held by the rate limiter, a MAC the guest wrote) and restored onto a fresh device and
 * TAP over the same guest memory, through the snapshot's JSON encoding, as a snapshot restore does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromJsonValue, toJsonValue } from '../../../snapshot/plain-data';
import { MmioReg, Status } from '../constants';
import { MmioTransport } from '../mmio-transport';
import { MockMmioDriver } from '../testing/mock-mmio-driver';
import { REGION_B, REGION_C, SpyLine } from '../testing/harness';
import { RX_QUEUE, TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_UFO, TX_QUEUE, VNET_HDR_SIZE } from './constants';
import { VirtioNet } from './device';
import { ethFrame, FakeBackend, FakeWatcher, setupNet, withHeader } from './net-harness';

const MAC = Uint8Array.of(0x06, 0x00, 0xac, 0x10, 0x00, 0x02);
const NEW_MAC = Uint8Array.of(0x06, 0x00, 0xac, 0x10, 0x00, 0x09);
const ONE_OP_PER_MINUTE = { ops: { size: 1, oneTimeBurst: 0, refillTimeMs: 60_000 } };

/** Through the snapshot file's encoding (Buffers and bigints included). */
const viaJson = <T>(v: T): T => fromJsonValue(JSON.parse(JSON.stringify(toJsonValue(v)))) as T;

test('an interface saved mid-I/O resumes on a fresh device and TAP: held frames go out once, limiter levels and the MAC carry over', () => {
  const net = setupNet({ guestMac: MAC, tx: ONE_OP_PER_MINUTE });
  const { memory, driver, rx, tx, backend, fds, device, log, clock } = net;

  // The guest writes a new MAC.
  driver.write(MmioReg.CONFIG, Buffer.from(NEW_MAC).readUInt32LE(0));
  driver.write(MmioReg.CONFIG + 4, Buffer.from(NEW_MAC).readUInt16LE(4));

  // TX: the first frame goes out, the second is held by the limiter (1 op per minute).
  const frames = [withHeader(ethFrame(200, NEW_MAC, 0x11)), withHeader(ethFrame(300, NEW_MAC, 0x22))];
  memory.write(REGION_C, frames[0]);
  memory.write(REGION_C + 0x1000, frames[1]);
  const txHeads = frames.map((f, i) => tx.addChain([{ addr: REGION_C + 0x1000 * i, len: f.length }]));
  driver.notify(TX_QUEUE);
  assert.deepEqual(backend.sent, [frames[0]]);

  // RX: a 1000-byte frame with one 100-byte buffer so far: the buffer is reserved, the frame waits.
  const small = rx.addChain([{ addr: REGION_B, len: 100, write: true }]);
  driver.notify(RX_QUEUE);
  const incoming = withHeader(ethFrame(1000, MAC, 0x33));
  backend.inbox.push(incoming);
  fds.fireReadable();
  assert.equal(rx.usedIdx, 0, 'the frame waits for more buffers');

  assert.deepEqual(device.heldChains(), [1, 1]);
  clock.advance(1_000); // a second of refill: still far from the next op
  const savedTransport = viaJson(net.transport.saveState(device.heldChains()));
  const savedDevice = viaJson(device.saveState());
  device.dispose();
  assert.equal(backend.closed, true);

  const backend2 = new FakeBackend();
  const fds2 = new FakeWatcher();
  const fresh = new VirtioNet({
    ifaceId: 'eth0', backend: backend2, guestMac: MAC, txRateLimiter: ONE_OP_PER_MINUTE, fds: fds2, clock, timers: clock, log, host: log,
  });
  fresh.restoreState(savedDevice);
  const transport2 = new MmioTransport(fresh, memory, new SpyLine(), { name: 'virtio-net', log });
  transport2.restoreState(savedTransport);
  const driver2 = new MockMmioDriver(transport2);

  assert.equal(driver2.read(MmioReg.STATUS) & Status.DRIVER_OK, Status.DRIVER_OK);
  assert.equal(backend2.offloads, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_UFO, 'the negotiated offloads are set on the new TAP');
  assert.deepEqual([...fresh.guestMac!], [...NEW_MAC]);
  const cfg = Buffer.alloc(8);
  cfg.writeUInt32LE(driver2.read(MmioReg.CONFIG) >>> 0, 0);
  cfg.writeUInt32LE(driver2.read(MmioReg.CONFIG + 4) >>> 0, 4);
  assert.deepEqual([...cfg.subarray(0, 6)], [...NEW_MAC], 'the config space shows the MAC the guest wrote');

  // The held TX frame is popped again but still waits for its token: the limiter's level came back.
  assert.deepEqual(backend2.sent, []);
  assert.deepEqual(tx.usedSince(0), [{ id: txHeads[0], len: 0 }]);
  clock.advance(59_000);
  assert.deepEqual(backend2.sent, [frames[1]], 'sent once, by the restored device, when its token is due');
  assert.deepEqual(tx.usedSince(1), [{ id: txHeads[1], len: 0 }]);

  // The waiting RX frame: the reserved buffer is popped again and one more completes the frame.
  const big = rx.addChain([{ addr: REGION_B + 0x1000, len: 2048, write: true }]);
  driver2.notify(RX_QUEUE);
  assert.deepEqual(rx.usedSince(0), [{ id: small, len: 100 }, { id: big, len: incoming.length - 100 }]);
  const got = Buffer.concat([memory.read(REGION_B, 100), memory.read(REGION_B + 0x1000, incoming.length - 100)]);
  assert.equal(got.readUInt16LE(10), 2, 'num_buffers');
  assert.deepEqual(got.subarray(VNET_HDR_SIZE), incoming.subarray(VNET_HDR_SIZE));
  assert.equal(backend2.reads > 0, true, 'the new TAP is read once the frame is delivered');
  fresh.dispose();
});

test('a device with nothing held saves no held chains; a malformed state is refused and changes nothing', () => {
  const { device } = setupNet();
  assert.deepEqual(device.heldChains(), [0, 0]);
  assert.equal(device.saveState().rxFrame, undefined);
  assert.equal(device.saveState().mac, undefined);
  for (const bad of [null, 7, { mac: Buffer.alloc(5) }, { rxFrame: Buffer.alloc(3) }, { rxFrame: 'frame' }]) {
    assert.throws(() => device.restoreState(bad), /virtio-net eth0: the snapshot's interface state is malformed/);
  }
  assert.deepEqual(device.heldChains(), [0, 0]);
});
