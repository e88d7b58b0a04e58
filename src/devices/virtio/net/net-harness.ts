/**
 * Test fakes for virtio-net: a backend standing in for the TAP (frames queued for reading, frames
 * written recorded), an fd watcher the test fires, and a device behind a real MMIO transport
 * driven by the driver-side queue mocks.
 */
import assert from 'node:assert/strict';
import type { MmdsNetworkStack } from '../../../mmds/net/network-stack';
import { FakeClock } from '../../../ratelimit/fake-clock';
import type { RateLimiterConfig } from '../../../config/rate-limiter';
import { FD_READABLE, FdWatch, FdWatcher } from '../device-context';
import { Status } from '../constants';
import { featureBit } from '../features';
import { MmioTransport } from '../mmio-transport';
import { MockMmioDriver } from '../testing/mock-mmio-driver';
import { MockQueue } from '../testing/mock-queue';
import { RecordingLog, REGION_A, SpyLine, testMemory } from '../testing/harness';
import { NetFeature, VNET_HDR_SIZE } from './constants';
import { VirtioNet } from './device';
import type { NetBackend } from './tap';

export class FakeBackend implements NetBackend {
  readonly fd = 42;
  readonly name = 'tap-test';
  /** Frames (vnet header included) the host has for the guest; a number is an errno to return once. */
  inbox: Array<Buffer | number> = [];
  sent: Buffer[] = [];
  offloads: number | undefined;
  closed = false;
  writeErrno = 0;
  reads = 0;

  read(buf: Uint8Array): number {
    this.reads++;
    const next = this.inbox.shift();
    if (next === undefined) return -11;
    if (typeof next === 'number') return -next;
    const n = Math.min(next.length, buf.length);
    buf.set(next.subarray(0, n));
    return n;
  }

  writev(bufs: readonly Uint8Array[]): number {
    if (this.writeErrno) return -this.writeErrno;
    const frame = Buffer.concat(bufs.map((b) => Buffer.from(b)));
    this.sent.push(frame);
    return frame.length;
  }

  setOffloads(flags: number): void { this.offloads = flags; }
  close(): void { this.closed = true; }
}

export class FakeWatcher implements FdWatcher {
  watches: Array<{ fd: number; events: number; closed: boolean; fire: (e: number) => void }> = [];

  watch(fd: number, onEvent: (e: number) => void, events = FD_READABLE): FdWatch {
    const w = { fd, events, closed: false, fire: onEvent };
    this.watches.push(w);
    return { setEvents: (e) => { w.events = e; }, close: () => { w.closed = true; } };
  }

  get current() { return this.watches[this.watches.length - 1]; }

  /** Fires the TAP watch as the loop would: only while it waits for readable. */
  fireReadable(): void {
    const w = this.current;
    assert.ok(w && !w.closed, 'the TAP is watched');
    if (w.events & FD_READABLE) w.fire(FD_READABLE);
  }
}

/** A vnet header (all zero but num_buffers / flags) followed by `frame`. */
export function withHeader(frame: Uint8Array, flags = 0): Buffer {
  const hdr = Buffer.alloc(VNET_HDR_SIZE);
  hdr[0] = flags;
  return Buffer.concat([hdr, Buffer.from(frame)]);
}

/** An Ethernet frame of `length` bytes from `src` with a recognisable payload. */
export function ethFrame(length: number, src = Uint8Array.of(6, 0, 0, 0, 0, 1), fill = 0x5a): Buffer {
  const f = Buffer.alloc(length, fill);
  Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).copy(f, 0);
  Buffer.from(src).copy(f, 6);
  f.writeUInt16BE(0x0800, 12);
  return f;
}

export interface NetSetupOptions {
  guestMac?: Uint8Array;
  mtu?: number;
  rx?: RateLimiterConfig;
  tx?: RateLimiterConfig;
  mmds?: MmdsNetworkStack;
  /** The clock and timers (share one with an MMDS stack). */
  clock?: FakeClock;
  /** Which offered features the driver accepts (default: all). */
  accept?: (offered: bigint) => bigint;
}

export function setupNet(opts: NetSetupOptions = {}) {
  const memory = testMemory();
  const log = new RecordingLog();
  const clock = opts.clock ?? new FakeClock();
  const backend = new FakeBackend();
  const fds = new FakeWatcher();
  const device = new VirtioNet({
    ifaceId: 'eth0', backend, guestMac: opts.guestMac, mtu: opts.mtu, rxRateLimiter: opts.rx, txRateLimiter: opts.tx,
    mmds: opts.mmds, fds, clock, timers: clock, log, host: log,
  });
  const line = new SpyLine();
  const transport = new MmioTransport(device, memory, line, { name: 'virtio-net', log });
  const driver = new MockMmioDriver(transport);
  const rx = new MockQueue(memory, REGION_A + 0x1000, 16);
  const tx = new MockQueue(memory, REGION_A + 0x2000, 16);
  assert.equal(driver.init([rx, tx], opts.accept) & Status.DRIVER_OK, Status.DRIVER_OK);
  return { memory, log, clock, backend, fds, device, transport, driver, rx, tx, line };
}

export const withoutMergeable = (f: bigint): bigint => f & ~featureBit(NetFeature.MRG_RXBUF);
