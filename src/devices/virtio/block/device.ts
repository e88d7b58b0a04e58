/**
 * virtio-blk (spec 5.2) on a host file: one request queue; reads, writes, flushes and GET_ID.
 * Requests run through an IoEngine (disk.ts): Sync completes each one before the next is
 * popped, Async submits them all to the thread pool and completes them as the pool answers, in
 * any order (the used ring allows that, spec 2.7.8). A rate limiter can hold the queue: the
 * request that did not fit is kept and retried first when the limiter's timer fires, so
 * requests still start in the order the driver queued them.
 */
import type { RateLimiterConfig } from '../../../config/rate-limiter';
import type { GuestMemory } from '../../../memory/guest-memory';
import { RateLimiter } from '../../../ratelimit/rate-limiter';
import type { Clock, Timers } from '../../../ratelimit/clock';
import { DeviceType } from '../constants';
import type { DescriptorChain } from '../descriptor-chain';
import { readConfigBytes, VirtioDevice, VirtioInterrupt } from '../device';
import { featureBit } from '../features';
import { GuestTriggeredLog, LogSink } from '../guest-log';
import { LimitedDrain } from '../limited-drain';
import type { Queue } from '../queue';
import { BlkFeature, BlkStatus, BlkStatusCode, CONFIG_CAPACITY, CONFIG_SEG_MAX, CONFIG_SIZE, QUEUE_SIZE, SEG_MAX } from './constants';
import { DiskFile, FileOps, nodeFileOps } from './disk';
import { AsyncEngine, IoEngine, SyncEngine } from './engine';
import { FlushBarrier } from './flush-barrier';
import { BlockMetrics } from './metrics';
import { BlockRequest, driveSerial, parseRequest, requestBytes } from './request';

export type CacheType = 'Unsafe' | 'Writeback';
export type IoEngineKind = 'Sync' | 'Async';

export interface VirtioBlockOptions {
  driveId: string;
  path: string;
  readOnly?: boolean;
  /** Unsafe (default): no flush feature, the host page cache is never synced. Writeback: flushes reach fdatasync. */
  cacheType?: CacheType;
  ioEngine?: IoEngineKind;
  rateLimiter?: RateLimiterConfig;
  /** For tests: file system calls, and the limiter's clock and timers. */
  fileOps?: FileOps;
  clock?: Clock;
  timers?: Timers;
  log?: LogSink;
}

/** What PATCH /drives/{id} may change after boot. */
export interface BlockUpdate {
  /** Reopen this file (the same path re-reads the size); the guest gets a config-change interrupt. */
  path?: string;
  /** Replaces buckets as RateLimiter.update does. */
  rateLimiter?: RateLimiterConfig;
}

interface Active {
  memory: GuestMemory;
  queue: Queue;
  interrupt: VirtioInterrupt;
}

interface Pending {
  chain: DescriptorChain;
  request: BlockRequest;
}

export class VirtioBlock implements VirtioDevice {
  readonly deviceType = DeviceType.Block;
  readonly queueMaxSizes = [QUEUE_SIZE];
  readonly features: bigint;
  readonly driveId: string;
  readonly readOnly: boolean;
  readonly cacheType: CacheType;
  readonly metrics = new BlockMetrics();
  readonly limiter: RateLimiter;
  private disk: DiskFile;
  private readonly engine: IoEngine;
  private readonly fileOps: FileOps;
  private readonly serial: Buffer;
  private readonly config = Buffer.alloc(CONFIG_SIZE);
  private readonly log: LogSink;
  private active: Active | undefined;
  /** Bumped by reset: completions of requests from an earlier epoch are dropped. */
  private epoch = 0;
  private draining = false;
  private readonly requests: LimitedDrain<Pending>;
  private readonly barrier = new FlushBarrier();

  constructor(opts: VirtioBlockOptions) {
    this.driveId = opts.driveId;
    this.readOnly = opts.readOnly ?? false;
    this.cacheType = opts.cacheType ?? 'Unsafe';
    this.fileOps = opts.fileOps ?? nodeFileOps;
    this.log = opts.log ?? new GuestTriggeredLog();
    this.serial = driveSerial(opts.driveId);
    this.disk = DiskFile.open(opts.path, this.readOnly, this.fileOps);
    this.engine = opts.ioEngine === 'Async' ? new AsyncEngine(this.fileOps) : new SyncEngine(this.fileOps);
    this.features = featureBit(BlkFeature.SEG_MAX)
      | (this.readOnly ? featureBit(BlkFeature.RO) : 0n)
      | (this.cacheType === 'Writeback' ? featureBit(BlkFeature.FLUSH) : 0n);
    this.config.writeUInt32LE(SEG_MAX, CONFIG_SEG_MAX);
    this.writeCapacity();
    this.limiter = new RateLimiter(opts.rateLimiter, { clock: opts.clock, timers: opts.timers, onUnblocked: () => this.guarded('resuming after the rate limiter', () => this.drain()) });
    this.requests = new LimitedDrain(this.limiter, {
      next: () => this.nextRequest(),
      bytes: (p) => requestBytes(p.request),
      run: (p) => this.execute(this.active!, p),
      throttled: () => { this.metrics.rateLimiterThrottled++; },
    });
  }

  get ioEngine(): IoEngineKind { return this.engine.kind; }
  /** A popped request held back by the rate limiter (for a snapshot). */
  get holdsRequest(): boolean { return this.requests.holding; }
  get path(): string { return this.disk.path; }
  /** Capacity in 512-byte sectors, as the guest sees it. */
  get capacity(): bigint { return this.disk.capacity; }

  readConfig(offset: number, data: Buffer): void { readConfigBytes(this.config, offset, data); }
  /** Only writeback toggling (VIRTIO_BLK_F_CONFIG_WCE) would make the config writable; not offered. */
  writeConfig(): void {}

  activate(memory: GuestMemory, queues: readonly Queue[], interrupt: VirtioInterrupt): void {
    this.active = { memory, queue: queues[0], interrupt };
  }

  reset(): void {
    this.active = undefined;
    this.requests.clear();
    this.epoch++;
    this.barrier.clear();
  }

  processQueue(): void {
    this.metrics.queueEvents++;
    this.drain();
  }

  /** Applies a PATCH; throws (changing nothing) when the new file cannot be opened. */
  update(u: BlockUpdate): void {
    try {
      if (u.path !== undefined) {
        const next = DiskFile.open(u.path, this.readOnly, this.fileOps);
        const old = this.disk;
        this.disk = next;
        old.close();
        this.writeCapacity();
        // The driver re-reads capacity on a config change (spec 5.2.4, 4.2.2 ConfigGeneration).
        this.active?.interrupt.signalConfigChange();
      }
      if (u.rateLimiter !== undefined) this.limiter.update(u.rateLimiter);
      this.metrics.updates++;
    } catch (err) {
      this.metrics.updateFails++;
      throw err;
    }
  }

  /** Device teardown: no more timers, the file closed once in-flight requests end. */
  dispose(): void {
    this.limiter.dispose();
    this.reset();
    this.disk.close();
  }

  private writeCapacity(): void {
    this.config.writeBigUInt64LE(this.disk.capacity, CONFIG_CAPACITY);
  }

  /** Pops and starts requests until the queue is empty or the rate limiter says stop. */
  private drain(): void {
    const a = this.active;
    if (a === undefined || this.requests.blocked) return;
    this.draining = true;
    try {
      this.requests.drain();
    } finally {
      this.draining = false;
    }
    a.interrupt.signalUsed(a.queue);
  }

  /** The next well-formed request; malformed chains are completed with an error on the way. */
  private nextRequest(): Pending | undefined {
    const a = this.active!;
    for (;;) {
      const chain = a.queue.pop();
      if (chain === undefined) return undefined;
      const pending = this.parse(a, chain);
      if (pending !== undefined) return pending;
    }
  }

  /** A request, or undefined when the chain was malformed and has already been completed. */
  private parse(a: Active, chain: DescriptorChain): Pending | undefined {
    if (chain.writableBytes === 0) {
      this.metrics.invalidRequests++;
      this.log.error(`virtio-block ${this.driveId}: dropping the chain at descriptor ${chain.head}: it has no device-writable status byte.`);
      a.queue.addUsed(chain.head, 0);
      return undefined;
    }
    const r = parseRequest(a.memory, chain, this.disk.capacity);
    if (r.ok) return { chain, request: r.request };
    this.metrics.invalidRequests++;
    this.log.error(`virtio-block ${this.driveId}: failing the request at descriptor ${chain.head}: ${r.why}.`);
    this.finish(a, chain, r.status, 0);
    return undefined;
  }

  private execute(a: Active, { chain, request }: Pending): void {
    switch (request.kind) {
      case 'read':
      case 'write': {
        if (request.kind === 'write' && this.readOnly) {
          this.metrics.readOnlyWrites++;
          return this.finish(a, chain, BlkStatus.IOERR, 0);
        }
        // Views of guest RAM: the file's data moves straight to or from the guest, no copy.
        const buffers = request.data.map((s) => a.memory.view(s.addr, s.len));
        const { kind, offset, length } = request;
        return this.submit(a, chain, kind, (done) => {
          if (kind === 'read') this.engine.read(this.disk, buffers, offset, done);
          else this.engine.write(this.disk, buffers, offset, done);
        }, length);
      }
      case 'flush':
        // Unsafe drives promise nothing beyond the host page cache: a flush has nothing to do.
        if (this.cacheType !== 'Writeback') {
          this.metrics.flushCount++;
          return this.finish(a, chain, BlkStatus.OK, 0);
        }
        return this.barrier.flush(() => this.submit(a, chain, 'flush', (done) => this.engine.flush(this.disk, done), 0));
      case 'get-id':
        this.metrics.getIdCount++;
        chain.write(a.memory, 0, this.serial.subarray(0, request.length));
        return this.finish(a, chain, BlkStatus.OK, request.length);
      case 'unsupported':
        this.metrics.unsupportedCount++;
        return this.finish(a, chain, BlkStatus.UNSUPP, 0);
    }
  }

  private submit(a: Active, chain: DescriptorChain, op: 'read' | 'write' | 'flush', start: (done: (err: Error | null) => void) => void, length: number): void {
    const epoch = this.epoch;
    const ticket = op === 'write' ? this.barrier.writeStarted() : 0;
    this.metrics.inFlight++;
    start((err) => this.guarded(`completing a ${op}`, () => {
      this.metrics.inFlight--;
      if (epoch !== this.epoch) return; // the driver reset the device meanwhile
      this.metrics.completed(op, length, err !== null);
      if (err) this.log.error(`virtio-block ${this.driveId}: a ${op} failed on ${this.disk.path}: ${err.message}; the guest gets an I/O error.`);
      this.finish(a, chain, err ? BlkStatus.IOERR : BlkStatus.OK, !err && op === 'read' ? length : 0);
      if (ticket) this.barrier.writeDone(ticket);
    }));
  }

  /** Writes the status byte, returns the chain with `dataLen` + 1 bytes written (spec 2.7.8). */
  private finish(a: Active, chain: DescriptorChain, status: BlkStatusCode, dataLen: number): void {
    if (a !== this.active) return;
    chain.write(a.memory, chain.writableBytes - 1, Buffer.of(status));
    a.queue.addUsed(chain.head, dataLen + 1);
    if (!this.draining) a.interrupt.signalUsed(a.queue);
  }

  /** Callbacks from timers and the thread pool run outside the transport's guard: never throw. */
  private guarded(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error(`virtio-block ${this.driveId}: ${what} failed: ${(err as Error).message}`);
    }
  }
}

