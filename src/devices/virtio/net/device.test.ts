import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceType, MmioReg } from '../constants';
import { featureBit } from '../features';
import { REGION_B, REGION_C } from '../testing/harness';
import { CONFIG_MTU, NetFeature, TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_UFO, VNET_HDR_SIZE } from './constants';
import { tapOffloads } from './device';
import { ethFrame, setupNet, withHeader, withoutMergeable } from './net-harness';

const MAC = Uint8Array.of(0x06, 0x00, 0xac, 0x10, 0x00, 0x02);

test('device id 1; MAC and MTU in the config space with their feature bits only when configured; the link is up', () => {
  const plain = setupNet();
  assert.equal(plain.driver.read(MmioReg.DEVICE_ID), DeviceType.Net);
  assert.equal(plain.device.features & featureBit(NetFeature.MAC), 0n);
  assert.equal(plain.device.features & featureBit(NetFeature.MTU), 0n);
  assert.ok(plain.device.features & featureBit(NetFeature.MRG_RXBUF));
  const { driver, device } = setupNet({ guestMac: MAC, mtu: 1450 });
  assert.ok(device.features & featureBit(NetFeature.MAC));
  assert.ok(device.features & featureBit(NetFeature.MTU));
  const bytes = Buffer.alloc(12);
  for (let i = 0; i < 12; i += 4) bytes.writeUInt32LE(driver.read(MmioReg.CONFIG + i) >>> 0, i);
  assert.deepEqual([...bytes.subarray(0, 6)], [...MAC]);
  assert.equal(bytes.readUInt16LE(8), 1, 'one queue pair');
  assert.ok(device.features & featureBit(NetFeature.STATUS));
  assert.equal(bytes.readUInt16LE(6), 1, 'VIRTIO_NET_S_LINK_UP');
  assert.equal(bytes.readUInt16LE(CONFIG_MTU), 1450);
});

test('the TAP gets the offloads the guest accepted', () => {
  assert.equal(setupNet().backend.offloads, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_UFO);
  const noCsum = setupNet({ accept: (f) => f & ~featureBit(NetFeature.GUEST_CSUM) });
  assert.equal(noCsum.backend.offloads, 0, 'no segmentation offload without checksum offload');
  assert.equal(tapOffloads(featureBit(NetFeature.GUEST_CSUM) | featureBit(NetFeature.GUEST_TSO6)), TUN_F_CSUM | TUN_F_TSO6);
});

test('TX: the vnet header and frame reach the TAP byte for byte, split over descriptors', () => {
  const { memory, driver, tx, backend, device, line } = setupNet();
  const frame = withHeader(ethFrame(1000), 1);
  memory.write(REGION_B, frame.subarray(0, 100));
  memory.write(REGION_C, frame.subarray(100));
  const head = tx.addChain([{ addr: REGION_B, len: 100 }, { addr: REGION_C, len: frame.length - 100 }]);
  driver.notify(1);
  assert.deepEqual(backend.sent, [frame]);
  assert.deepEqual(tx.usedSince(0), [{ id: head, len: 0 }]);
  assert.equal(device.metrics.txBytes, 1000);
  assert.equal(device.metrics.txPackets, 1);
  assert.ok(line.count >= 1);
});

test('TX: a source MAC other than the configured one is counted, until the guest writes that MAC to the config space', () => {
  const { memory, driver, tx, device, backend } = setupNet({ guestMac: MAC });
  const other = Uint8Array.of(6, 5, 4, 3, 2, 1);
  const send = (src: Uint8Array<ArrayBuffer>) => {
    const f = withHeader(ethFrame(64, src));
    memory.write(REGION_B, f);
    tx.addChain([{ addr: REGION_B, len: f.length }]);
    driver.notify(1);
  };
  send(MAC);
  assert.equal(device.metrics.txSpoofedMac, 0);
  send(other);
  assert.equal(device.metrics.txSpoofedMac, 1);
  assert.equal(backend.sent.length, 2, 'spoofed frames still go out');
  driver.write(MmioReg.CONFIG, Buffer.from(other).readUInt32LE(0));
  driver.write(MmioReg.CONFIG + 4, Buffer.from(other).readUInt16LE(4));
  send(other);
  assert.equal(device.metrics.txSpoofedMac, 1);
  assert.deepEqual([...device.guestMac!], [...other]);
});

test('TX: chains too short for a header, too long for a frame, or write-only are dropped and counted; the queue goes on', () => {
  const { memory, driver, tx, backend, device, log } = setupNet();
  const good = withHeader(ethFrame(60));
  memory.write(REGION_C, good);
  const short = tx.addChain([{ addr: REGION_B, len: 5 }]);
  const huge = tx.addChain([{ addr: REGION_B, len: 0x10000 }, { addr: REGION_C, len: 0x10000 }]);
  const writeOnly = tx.addChain([{ addr: REGION_B, len: 64, write: true }]);
  const ok = tx.addChain([{ addr: REGION_C, len: good.length }]);
  driver.notify(1);
  assert.deepEqual(tx.usedSince(0).map((u) => u.id), [short, huge, writeOnly, ok]);
  assert.deepEqual(backend.sent, [good]);
  assert.equal(device.metrics.txMalformedFrames, 3);
  assert.equal(log.warnings.length, 3);
});

test('TX: a failing TAP write drops the frame, counts it and keeps the queue going', () => {
  const { memory, driver, tx, backend, device } = setupNet();
  backend.writeErrno = 5;
  const f = withHeader(ethFrame(60));
  memory.write(REGION_B, f);
  tx.addChain([{ addr: REGION_B, len: f.length }]);
  driver.notify(1);
  assert.equal(tx.usedIdx, 1);
  assert.equal(device.metrics.tapWriteFails, 1);
});

test('RX: a frame from the TAP lands in one buffer with num_buffers 1', () => {
  const { memory, driver, rx, backend, fds, device } = setupNet();
  const head = rx.addChain([{ addr: REGION_B, len: 2048, write: true }]);
  driver.notify(0);
  const frame = withHeader(ethFrame(1500), 1);
  backend.inbox.push(frame);
  fds.fireReadable();
  assert.deepEqual(rx.usedSince(0), [{ id: head, len: frame.length }]);
  const got = memory.read(REGION_B, frame.length);
  assert.equal(got.readUInt16LE(10), 1);
  assert.deepEqual(got.subarray(VNET_HDR_SIZE), frame.subarray(VNET_HDR_SIZE));
  assert.equal(got[0], 1, 'the header flags pass through');
  assert.equal(device.metrics.rxBytes, 1500);
});

test('RX: mergeable buffers: a 5000-byte frame spans three 2 KiB buffers, num_buffers 3', () => {
  const { memory, driver, rx, backend, fds } = setupNet();
  const heads = [0, 1, 2, 3].map((i) => rx.addChain([{ addr: REGION_B + 0x1000 * i, len: 2048, write: true }]));
  driver.notify(0);
  const frame = withHeader(ethFrame(5000 - VNET_HDR_SIZE));
  backend.inbox.push(frame);
  fds.fireReadable();
  assert.deepEqual(rx.usedSince(0), [{ id: heads[0], len: 2048 }, { id: heads[1], len: 2048 }, { id: heads[2], len: 904 }]);
  assert.equal(memory.read(REGION_B + 10, 2).readUInt16LE(0), 3);
  const joined = Buffer.concat([memory.read(REGION_B, 2048), memory.read(REGION_B + 0x1000, 2048), memory.read(REGION_B + 0x2000, 904)]);
  assert.deepEqual(joined.subarray(VNET_HDR_SIZE), frame.subarray(VNET_HDR_SIZE));
  // the fourth buffer is still the guest's: the next frame goes there
  backend.inbox.push(withHeader(ethFrame(100)));
  fds.fireReadable();
  assert.equal(rx.usedElem(3).id, heads[3]);
});

test('RX: with no buffer the frame waits, the TAP watch pauses, and the guest adding one resumes both', () => {
  const { driver, rx, backend, fds, device } = setupNet();
  backend.inbox.push(withHeader(ethFrame(100)), withHeader(ethFrame(200)));
  fds.fireReadable();
  assert.equal(fds.current.events, 0, 'no busy polling while the guest has no buffer');
  assert.equal(backend.inbox.length, 1, 'one frame held, the other still in the TAP');
  assert.equal(device.metrics.noRxAvailBuffer, 1);
  rx.addChain([{ addr: REGION_B, len: 2048, write: true }]);
  rx.addChain([{ addr: REGION_B + 2048, len: 2048, write: true }]);
  driver.notify(0);
  assert.deepEqual(rx.usedSince(0).map((u) => u.len), [112, 212]);
  assert.equal(fds.current.events, 1, 'the TAP is watched again once it is drained');
});

test('RX: without mergeable buffers a frame larger than the buffer is dropped and the buffer kept', () => {
  const { driver, rx, backend, fds, device } = setupNet({ accept: withoutMergeable });
  const head = rx.addChain([{ addr: REGION_B, len: 1526, write: true }]);
  driver.notify(0);
  backend.inbox.push(withHeader(ethFrame(4000)), withHeader(ethFrame(1000)));
  fds.fireReadable();
  assert.deepEqual(rx.usedSince(0), [{ id: head, len: 1012 }]);
  assert.equal(device.metrics.rxFails, 1);
});

test('RX: a buffer too small for a vnet header is returned unused; runts from the TAP are dropped', () => {
  const { driver, rx, backend, fds, device } = setupNet();
  const tiny = rx.addChain([{ addr: REGION_B, len: 4, write: true }]);
  const good = rx.addChain([{ addr: REGION_B + 64, len: 2048, write: true }]);
  driver.notify(0);
  backend.inbox.push(Buffer.alloc(8), withHeader(ethFrame(60)));
  fds.fireReadable();
  assert.deepEqual(rx.usedSince(0), [{ id: tiny, len: 0 }, { id: good, len: 72 }]);
  assert.equal(device.metrics.rxFails, 1);
});

test('RX: a TAP read error pauses the watch and retries later instead of spinning', () => {
  const { clock, backend, fds, device } = setupNet();
  backend.inbox.push(5);
  fds.fireReadable();
  assert.equal(device.metrics.tapReadFails, 1);
  assert.equal(fds.current.events, 0);
  clock.advance(100);
  assert.equal(fds.current.events, 1);
});

test('TX rate limit: a frame over the budget waits for the refill; PATCH {size:0} lifts the limit', () => {
  const { memory, driver, tx, backend, device, clock } = setupNet({ tx: { bandwidth: { size: 1000, oneTimeBurst: 0, refillTimeMs: 100 } } });
  const f = withHeader(ethFrame(800));
  memory.write(REGION_B, f);
  for (let i = 0; i < 3; i++) tx.addChain([{ addr: REGION_B, len: f.length }]);
  driver.notify(1);
  assert.equal(backend.sent.length, 1);
  assert.equal(device.metrics.txRateLimiterThrottled, 1);
  clock.advance(100);
  assert.equal(backend.sent.length, 2);
  device.update({ txRateLimiter: { bandwidth: { size: 0, oneTimeBurst: 0, refillTimeMs: 0 } } });
  clock.advance(100);
  assert.equal(backend.sent.length, 3);
});

test('RX rate limit: ops bucket of 1 per second holds the second frame and pauses the TAP watch', () => {
  const { driver, rx, backend, fds, device, clock } = setupNet({ rx: { ops: { size: 1, oneTimeBurst: 0, refillTimeMs: 1000 } } });
  for (let i = 0; i < 3; i++) rx.addChain([{ addr: REGION_B + 2048 * i, len: 2048, write: true }]);
  driver.notify(0);
  backend.inbox.push(withHeader(ethFrame(100)), withHeader(ethFrame(100)));
  fds.fireReadable();
  assert.equal(rx.usedIdx, 1);
  assert.equal(fds.current.events, 0);
  assert.equal(device.metrics.rxRateLimiterThrottled, 1);
  clock.advance(1000);
  assert.equal(rx.usedIdx, 2);
  assert.equal(fds.current.events, 1);
});

test('a reset stops the TAP watch and drops held frames; activation again starts clean', () => {
  const { driver, backend, fds, device } = setupNet();
  backend.inbox.push(withHeader(ethFrame(100)));
  fds.fireReadable();
  driver.write(MmioReg.STATUS, 0);
  assert.equal(fds.current.closed, true);
  device.dispose();
  assert.equal(backend.closed, true);
});

test('paused: no TAP reads until resumed', () => {
  const { driver, rx, backend, fds, device } = setupNet();
  rx.addChain([{ addr: REGION_B, len: 2048, write: true }]);
  driver.notify(0);
  device.setPaused(true);
  backend.inbox.push(withHeader(ethFrame(100)));
  const reads = backend.reads;
  driver.notify(0);
  fds.fireReadable();
  assert.equal(backend.reads, reads);
  device.setPaused(false);
  assert.equal(rx.usedIdx, 1);
});
