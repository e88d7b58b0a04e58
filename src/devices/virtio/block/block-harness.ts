/**
 * Test helpers for virtio-blk: a device activated on a driver-side mock queue, requests laid out
 * in guest memory as Linux's virtio_blk driver lays them out (header, data, status byte), and
 * file operations whose async calls finish only when a test says so.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { GuestMemory } from '../../../memory/guest-memory';
import type { VirtioInterrupt } from '../device';
import type { Queue } from '../queue';
import { activeQueue, REGION_A, REGION_B, testMemory } from '../testing/harness';
import { BufferSpec, MockQueue } from '../testing/mock-queue';
import { REQUEST_HEADER_SIZE } from './constants';
import { FileOps, IoCallback, nodeFileOps } from './disk';
import { VirtioBlock, VirtioBlockOptions } from './device';
import { tempDir } from '../../../testing/temp-dir';

export class SpyInterrupt implements VirtioInterrupt {
  /** signalUsed calls, and how many of them the driver's suppression let through. */
  calls = 0;
  used = 0;
  configChanges = 0;
  signalUsed(queue: Queue): void {
    this.calls++;
    if (queue.needsNotification()) this.used++;
  }
  signalConfigChange(): void { this.configChanges++; }
}

/** A temporary file of `size` bytes holding `fill(i)` at byte i (default: i & 0xff). */
export function tempDisk(size: number, fill: (i: number) => number = (i) => i & 0xff): string {
  const dir = tempDir('sparkler-blk-');
  const file = path.join(dir, 'disk.img');
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = fill(i);
  fs.writeFileSync(file, data);
  return file;
}

/** Where requests put their pieces: headers at 0x2000 + 16n, data in region B, status bytes at 0x3000 + n. */
const HEADERS = REGION_A + 0x2000;
const STATUSES = REGION_A + 0x3000;
const DATA = REGION_B;

export class BlockRig {
  readonly memory: GuestMemory = testMemory();
  readonly mock = new MockQueue(this.memory, REGION_A + 0x1000, 16);
  readonly interrupt = new SpyInterrupt();
  readonly device: VirtioBlock;
  readonly queue: Queue;
  private n = 0;

  constructor(opts: VirtioBlockOptions) {
    this.device = new VirtioBlock(opts);
    this.queue = activeQueue(this.memory, this.mock).queue;
    this.device.activate(this.memory, [this.queue], this.interrupt);
  }

  /**
   * Makes a request available: header (type, sector), then `dataLen` bytes (device-writable
   * for reads and GET_ID), then the status byte. Returns where its pieces are.
   */
  request(type: number, sector: bigint, dataLen: number, opts: { dataWritable?: boolean; data?: Buffer } = {}): Req {
    const i = this.n++;
    const header = HEADERS + 16 * (i % 64);
    const data = DATA + 0x1000 * (i % 8);
    const status = STATUSES + (i % 256);
    const h = Buffer.alloc(REQUEST_HEADER_SIZE);
    h.writeUInt32LE(type, 0);
    h.writeBigUInt64LE(sector, 8);
    this.memory.write(header, h);
    if (opts.data) this.memory.write(data, opts.data);
    this.memory.write(status, Buffer.of(0xee));
    const buffers: BufferSpec[] = [{ addr: header, len: REQUEST_HEADER_SIZE }];
    if (dataLen > 0) buffers.push({ addr: data, len: dataLen, write: opts.dataWritable ?? type !== 1 });
    buffers.push({ addr: status, len: 1, write: true });
    return { head: this.mock.addChain(buffers), data, status };
  }

  /** A chain of raw buffers (for malformed requests). */
  chain(buffers: BufferSpec[]): number {
    return this.mock.addChain(buffers);
  }

  status(r: Req): number { return this.memory.read(r.status, 1)[0]; }
  data(r: Req, len: number): Buffer { return Buffer.from(this.memory.read(r.data, len)); }
  get used(): Array<{ id: number; len: number }> { return this.mock.usedSince(0); }
  notify(): void { this.device.processQueue(); }
}

export interface Req {
  head: number;
  data: number;
  status: number;
}

/**
 * nodeFileOps whose async calls wait in `pending` until complete(i) runs them (for real), so a
 * test decides the order in which the thread pool "answers". Sync calls and counts pass through.
 */
export class ControlledFileOps implements FileOps {
  pending: Array<{ op: string; run: () => void }> = [];
  fdatasyncs = 0;
  failNext: NodeJS.ErrnoException | undefined;

  openSync = nodeFileOps.openSync;
  fstatSync = nodeFileOps.fstatSync;
  closeSync = nodeFileOps.closeSync;
  readvSync = (fd: number, b: Buffer[], pos: number) => this.maybeFail() ?? nodeFileOps.readvSync(fd, b, pos);
  writevSync = (fd: number, b: Buffer[], pos: number) => this.maybeFail() ?? nodeFileOps.writevSync(fd, b, pos);
  fdatasyncSync = (fd: number) => { this.fdatasyncs++; this.maybeFail(); nodeFileOps.fdatasyncSync(fd); };

  readv(fd: number, b: Buffer[], pos: number, cb: IoCallback): void {
    this.defer('read', cb, () => nodeFileOps.readvSync(fd, b, pos));
  }
  writev(fd: number, b: Buffer[], pos: number, cb: IoCallback): void {
    this.defer('write', cb, () => nodeFileOps.writevSync(fd, b, pos));
  }
  fdatasync(fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void {
    this.defer('fdatasync', (err) => cb(err), () => { this.fdatasyncs++; nodeFileOps.fdatasyncSync(fd); return 0; });
  }

  /** Runs pending call `i` (0 = oldest) and its callback. */
  complete(i = 0): string {
    const [p] = this.pending.splice(i, 1);
    p.run();
    return p.op;
  }

  private defer(op: string, cb: IoCallback, io: () => number): void {
    const failure = this.failNext;
    this.failNext = undefined;
    this.pending.push({ op, run: () => (failure ? cb(failure, 0) : cb(null, io())) });
  }

  private maybeFail(): undefined {
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure) throw failure;
    return undefined;
  }
}

export function errno(code: string, message = code): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}
