/**
 * Fakes for virtio tests: guest memory with a known layout, a log and an interrupt line that
 * record, a queue activated without a transport, and a small device that fills every writable
 * buffer (what an rng device does) so transport tests have something real to drive.
 */
import { GuestMemory } from '../../../memory/guest-memory';
import type { InterruptLine } from '../../bus';
import { DeviceType } from '../constants';
import { DescriptorChain } from '../descriptor-chain';
import { readConfigBytes, VirtioDevice, VirtioInterrupt } from '../device';
import { TRANSPORT_FEATURES } from '../features';
import type { LogSink } from '../guest-log';
import { Queue, QueueHost } from '../queue';
import { MockQueue } from './mock-queue';

/** Two adjacent 64 KiB regions (so a buffer can straddle them), then a hole, then 64 KiB more at 0x40000. */
export const REGION_A = 0x0;
export const REGION_B = 0x10000;
export const REGION_C = 0x40000;
export const HOLE = 0x20000;

export function testMemory(): GuestMemory {
  return GuestMemory.fromLayout([
    { start: REGION_A, size: 0x10000 },
    { start: REGION_B, size: 0x10000 },
    { start: REGION_C, size: 0x10000 },
  ]);
}

export class RecordingLog implements LogSink, QueueHost {
  errors: string[] = [];
  warnings: string[] = [];
  fatals: string[] = [];
  error(message: string): void { this.errors.push(message); }
  warn(message: string): void { this.warnings.push(message); }
  fatal(message: string): void { this.fatals.push(message); }
  get all(): string[] { return [...this.errors, ...this.warnings, ...this.fatals]; }
}

export class SpyLine implements InterruptLine {
  count = 0;
  trigger(): void { this.count++; }
}

/** A queue configured and activated directly from `mock`'s layout, as the transport would at DRIVER_OK. */
export function activeQueue(memory: GuestMemory, mock: MockQueue, features: bigint = TRANSPORT_FEATURES): { queue: Queue; host: RecordingLog } {
  const queue = new Queue(256);
  const host = new RecordingLog();
  queue.size = mock.size;
  queue.descTable = BigInt(mock.desc);
  queue.availRing = BigInt(mock.avail);
  queue.usedRing = BigInt(mock.used);
  queue.ready = true;
  const why = queue.validate(memory) ?? queue.activate(memory, features, host, 'test queue');
  if (why !== undefined) throw new Error(`test queue cannot be activated: ${why}`);
  return { queue, host };
}

/** Fills each chain's writable bytes with `fill` and records what it saw. */
export class FakeDevice implements VirtioDevice {
  deviceType: number = DeviceType.Rng;
  features = 0n;
  config = Buffer.from([0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17]);
  fill = 0xab;
  failActivate = false;
  failProcess = false;
  resets = 0;
  chains: DescriptorChain[] = [];
  active: { memory: GuestMemory; queues: readonly Queue[]; interrupt: VirtioInterrupt; features: bigint } | undefined;

  constructor(readonly queueMaxSizes: readonly number[] = [256]) {}

  /** How many queues must be ready at DRIVER_OK (the rest are optional). */
  required: number | undefined;
  requiredQueues(): number { return this.required ?? this.queueMaxSizes.length; }

  readConfig(offset: number, data: Buffer): void { readConfigBytes(this.config, offset, data); }
  writeConfig(offset: number, data: Buffer): void {
    if (offset >= 0 && offset + data.length <= this.config.length) data.copy(this.config, offset);
  }

  activate(memory: GuestMemory, queues: readonly Queue[], interrupt: VirtioInterrupt, features: bigint): void {
    if (this.failActivate) throw new Error('activation refused by the test');
    this.active = { memory, queues, interrupt, features };
  }

  reset(): void {
    this.resets++;
    this.active = undefined;
  }

  processQueue(index: number): void {
    if (this.failProcess) throw new Error('processing refused by the test');
    const a = this.active;
    if (a === undefined) return;
    const q = a.queues[index];
    for (let c = q.pop(); c !== undefined; c = q.pop()) {
      this.chains.push(c);
      q.addUsed(c.head, c.write(a.memory, 0, Buffer.alloc(c.writableBytes, this.fill)));
    }
    a.interrupt.signalUsed(q);
  }
}
