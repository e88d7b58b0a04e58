/**
 * The device against a real TAP and the real loop watcher (no KVM): the "guest" (a driver-side
 * queue mock) sends an ARP request to an address the test gives the host end of the TAP, and
 * the host kernel's ARP reply comes back through the TAP watch into an RX buffer. Needs root
 * and /dev/net/tun; the TAP has a name unique to this process and is deleted afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { native } from '../../../native';
import { FakeClock } from '../../../ratelimit/fake-clock';
import { LoopFdWatcher } from '../../../vmm/fd-watcher';
import { Status } from '../constants';
import { MmioTransport } from '../mmio-transport';
import { MockMmioDriver } from '../testing/mock-mmio-driver';
import { MockQueue } from '../testing/mock-queue';
import { RecordingLog, REGION_A, REGION_B, REGION_C, SpyLine, testMemory } from '../testing/harness';
import { VNET_HDR_SIZE } from './constants';
import { VirtioNet } from './device';
import { Tap } from './tap';

const canTap = process.getuid?.() === 0 && fs.existsSync('/dev/net/tun');
const GUEST_MAC = [0x06, 0, 0, 0, 0, 0x02];
const HOST_IP = [172, 31, 254, 1];
const GUEST_IP = [172, 31, 254, 2];

function arpRequest(): Buffer {
  return Buffer.from([
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, ...GUEST_MAC, 0x08, 0x06,
    0, 1, 0x08, 0, 6, 4, 0, 1, ...GUEST_MAC, ...GUEST_IP, 0, 0, 0, 0, 0, 0, ...HOST_IP,
  ]);
}

test('real TAP: an ARP request goes out through TX and the host kernel\'s reply comes back on RX', { skip: canTap ? false : 'needs root and /dev/net/tun' }, async () => {
  const name = `spki${process.pid % 100000}`;
  execFileSync('ip', ['tuntap', 'add', 'dev', name, 'mode', 'tap']);
  let device: VirtioNet | undefined;
  try {
    execFileSync('ip', ['addr', 'add', `${HOST_IP.join('.')}/30`, 'dev', name]);
    execFileSync('ip', ['link', 'set', name, 'up']);
    const memory = testMemory();
    const log = new RecordingLog();
    const clock = new FakeClock();
    device = new VirtioNet({ ifaceId: 'eth0', backend: Tap.open(name, native()), guestMac: Uint8Array.from(GUEST_MAC), fds: new LoopFdWatcher(), clock, timers: clock, log, host: log });
    const driver = new MockMmioDriver(new MmioTransport(device, memory, new SpyLine(), { name: 'virtio-net', log }));
    const rx = new MockQueue(memory, REGION_A + 0x1000, 16);
    const tx = new MockQueue(memory, REGION_A + 0x2000, 16);
    assert.equal(driver.init([rx, tx]) & Status.DRIVER_OK, Status.DRIVER_OK);
    // 16 buffers (REGION_B is 64 KiB): room for the reply beside the host's own chatter.
    for (let i = 0; i < 16; i++) rx.addChain([{ addr: REGION_B + 2048 * i, len: 2048, write: true }]);
    driver.notify(0);

    const frame = Buffer.concat([Buffer.alloc(VNET_HDR_SIZE), arpRequest()]);
    memory.write(REGION_C, frame);
    const sendRequest = () => {
      tx.addChain([{ addr: REGION_C, len: frame.length }]);
      driver.notify(1);
    };
    sendRequest();
    assert.equal(device.metrics.txPackets, 1, log.all.join('\n'));

    // The reply arrives through the loop; other frames (IPv6 router solicitations) may come first.
    // Like a guest's ARP, the request is sent again each second without a reply (once, under
    // load in CI, the first one went unanswered right after the link came up).
    let reply: Buffer | undefined;
    const seen: string[] = [];
    for (let waited = 20; reply === undefined && waited <= 5000; waited += 20) {
      await new Promise((r) => setTimeout(r, 20));
      seen.length = 0;
      for (let n = 0; n < rx.usedIdx; n++) {
        const { id, len } = rx.usedElem(n);
        const f = memory.read(REGION_B + 2048 * id, len).subarray(VNET_HDR_SIZE);
        seen.push(`0x${f.readUInt16BE(12).toString(16)}`);
        if (f.readUInt16BE(12) === 0x0806 && f.readUInt16BE(20) === 2) reply = f;
      }
      if (reply === undefined && waited % 1000 === 0) sendRequest();
    }
    assert.ok(reply, `no ARP reply within 5 s to ${device.metrics.txPackets} requests; ${rx.usedIdx} frames received (ethertypes ${seen.join(' ')}); ${log.all.join('\n')}`);
    assert.deepEqual([...reply.subarray(0, 6)], GUEST_MAC, 'addressed to the guest');
    assert.deepEqual([...reply.subarray(28, 32)], HOST_IP, 'the host answers for its address');
    assert.equal(memory.read(REGION_B, VNET_HDR_SIZE).readUInt16LE(10), 1, 'num_buffers');
    assert.ok(device.metrics.rxTapEvents >= 1);
  } finally {
    device?.dispose();
    execFileSync('ip', ['link', 'del', name]);
  }
});
