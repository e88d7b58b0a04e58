/**
 * virtio-rng, the entropy device (spec 5.4): one request queue, no feature bits, no config
 * space. Every buffer the driver makes available is device-writable; the device fills it with
 * bytes from the host's CSPRNG (crypto.randomFillSync, i.e. OpenSSL seeded by getrandom) and
 * returns it with the number of bytes written. A rate limiter can hold the queue: the chain
 * that did not fit is kept and filled first when the limiter's timer fires.
 */
import type { RateLimiterConfig } from '../../../config/rate-limiter';
import type { GuestMemory } from '../../../memory/guest-memory';
import type { Clock, Timers } from '../../../ratelimit/clock';
import { RateLimiter } from '../../../ratelimit/rate-limiter';
import { DeviceType } from '../constants';
import type { DescriptorChain } from '../descriptor-chain';
import type { VirtioDevice, VirtioInterrupt } from '../device';
import { GuestTriggeredLog, LogSink } from '../guest-log';
import { LimitedDrain } from '../limited-drain';
import type { Queue } from '../queue';
import { RngMetrics } from './metrics';

export const RNG_QUEUE_SIZE = 256;
/**
 * At most this much per request: a guest asking for a huge buffer gets it in several requests
 * (spec 5.4.6.1 lets the device write fewer bytes than offered), so one chain cannot keep the
 * VMM thread busy generating megabytes. Linux asks for at most a page or so at a time.
 */
export const MAX_BYTES_PER_REQUEST = 64 * 1024;

export interface VirtioRngOptions {
  rateLimiter?: RateLimiterConfig;
  /** For tests: the limiter's clock and timers, and the random source. */
  clock?: Clock;
  timers?: Timers;
  fill?: (bytes: Buffer) => void;
  log?: LogSink;
}

interface Active {
  memory: GuestMemory;
  queue: Queue;
  interrupt: VirtioInterrupt;
}

let randomFillSync: ((bytes: Buffer) => Buffer) | undefined;

/** The host CSPRNG; node:crypto (~30 modules) loads on the first request, not with every VMM. */
function hostRandomFill(bytes: Buffer): void {
  randomFillSync ??= (require('node:crypto') as typeof import('node:crypto')).randomFillSync;
  randomFillSync(bytes);
}

export class VirtioRng implements VirtioDevice {
  readonly deviceType = DeviceType.Rng;
  readonly queueMaxSizes = [RNG_QUEUE_SIZE];
  readonly features = 0n;
  readonly metrics = new RngMetrics();
  /** A popped request held back by the rate limiter (for a snapshot). */
  get holdsRequest(): boolean { return this.requests.holding; }
  readonly limiter: RateLimiter;
  private readonly fill: (bytes: Buffer) => void;
  private readonly log: LogSink;
  private active: Active | undefined;
  private readonly requests: LimitedDrain<DescriptorChain>;

  constructor(opts: VirtioRngOptions = {}) {
    this.fill = opts.fill ?? hostRandomFill;
    this.log = opts.log ?? new GuestTriggeredLog();
    this.limiter = new RateLimiter(opts.rateLimiter, {
      clock: opts.clock,
      timers: opts.timers,
      onUnblocked: () => {
        try {
          this.drain();
        } catch (err) {
          this.log.error(`virtio-rng: resuming after the rate limiter failed: ${(err as Error).message}`);
        }
      },
    });
    this.requests = new LimitedDrain(this.limiter, {
      next: () => this.nextRequest(),
      bytes: (chain) => Math.min(chain.writableBytes, MAX_BYTES_PER_REQUEST),
      run: (chain) => {
        const a = this.active!;
        a.queue.addUsed(chain.head, this.fillChain(a.memory, chain, Math.min(chain.writableBytes, MAX_BYTES_PER_REQUEST)));
      },
      throttled: () => { this.metrics.rateLimiterThrottled++; },
    });
  }

  /** No config space (spec 5.4.4): every read is zero. */
  readConfig(_offset: number, data: Buffer): void { data.fill(0); }
  writeConfig(): void {}

  activate(memory: GuestMemory, queues: readonly Queue[], interrupt: VirtioInterrupt): void {
    this.active = { memory, queue: queues[0], interrupt };
  }

  reset(): void {
    this.active = undefined;
    this.requests.clear();
  }

  processQueue(): void {
    this.metrics.queueEvents++;
    this.drain();
  }

  /** Replaces the rate limiter's buckets (RateLimiter.update semantics). */
  updateRateLimiter(config: RateLimiterConfig): void {
    this.limiter.update(config);
  }

  dispose(): void {
    this.limiter.dispose();
    this.reset();
  }

  private drain(): void {
    const a = this.active;
    if (a === undefined || this.requests.blocked) return;
    this.requests.drain();
    a.interrupt.signalUsed(a.queue);
  }

  /** The next chain with room for bytes; one without any is returned empty (a driver error). */
  private nextRequest(): DescriptorChain | undefined {
    const a = this.active!;
    for (;;) {
      const chain = a.queue.pop();
      if (chain === undefined || chain.writableBytes > 0) return chain;
      this.metrics.invalidRequests++;
      this.log.warn(`virtio-rng: returning the chain at descriptor ${chain.head} empty: it has no device-writable buffer.`);
      a.queue.addUsed(chain.head, 0);
    }
  }

  /** Fills the first `wanted` writable bytes in place (views of guest RAM, no copy); returns bytes written. */
  private fillChain(memory: GuestMemory, chain: DescriptorChain, wanted: number): number {
    let done = 0;
    try {
      for (const s of chain.writable) {
        if (done === wanted) break;
        const n = Math.min(s.len, wanted - done);
        this.fill(memory.view(s.addr, n));
        done += n;
      }
    } catch (err) {
      // Bytes we could not vouch for are not entropy: give back nothing rather than a partial fill.
      this.metrics.hostRngFails++;
      this.log.error(`virtio-rng: the host CSPRNG failed: ${(err as Error).message}`);
      return 0;
    }
    this.metrics.requests++;
    this.metrics.bytes += done;
    return done;
  }
}
