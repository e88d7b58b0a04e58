/**
 * Where a received frame goes in the guest: one RX chain, or with mergeable buffers as many as it
 * takes (num_buffers in the virtio-net header says how many). Chains popped for a frame that
 * does not fit yet stay reserved here until the guest adds more; a frame that can never fit is
 * dropped, and a chain too small for even the header is returned unused.
 */
import type { GuestMemory } from '../../../memory/guest-memory';
import type { DescriptorChain } from '../descriptor-chain';
import type { LogSink } from '../guest-log';
import type { Queue } from '../queue';
import { VNET_HDR_NUM_BUFFERS, VNET_HDR_SIZE } from './constants';
import type { NetMetrics } from './metrics';

export type RxOutcome = 'delivered' | 'dropped' | 'no-buffers';

export class RxChains {
  /** Popped for the waiting frame but not used yet. */
  private reserved: DescriptorChain[] = [];

  constructor(private readonly ifaceId: string, private readonly metrics: NetMetrics, private readonly log: LogSink) {}

  /** Chains popped and not yet used (a snapshot counts them as held). */
  get held(): number {
    return this.reserved.length;
  }

  /** Forgets the reserved chains (a device reset: the driver starts its queue over). */
  clear(): void {
    this.reserved = [];
  }

  /** Copies frame[0, length) (header included) into the guest's buffers; 'no-buffers' keeps what it popped. */
  deliver(frame: Buffer, length: number, rx: Queue, memory: GuestMemory, mergeable: boolean): RxOutcome {
    let room = this.reserved.reduce((s, c) => s + c.writableBytes, 0);
    while (room < length && (mergeable || this.reserved.length === 0) && this.reserved.length < rx.size) {
      const chain = rx.pop();
      if (chain === undefined) return 'no-buffers';
      if (chain.writableBytes < VNET_HDR_SIZE) {
        this.log.warn(`virtio-net ${this.ifaceId}: returning the RX chain at descriptor ${chain.head} unused: it has ${chain.writableBytes} writable bytes, less than a virtio-net header.`);
        rx.addUsed(chain.head, 0);
        continue;
      }
      this.reserved.push(chain);
      room += chain.writableBytes;
    }
    if (room < length) {
      this.metrics.rxFails++;
      this.log.warn(`virtio-net ${this.ifaceId}: dropping a ${length}-byte frame: the guest's receive buffers hold only ${room} bytes${mergeable ? '' : ' (no mergeable buffers)'}.`);
      return 'dropped';
    }
    let count = 0;
    for (let left = length; left > 0; count++) left -= this.reserved[count].writableBytes;
    frame.writeUInt16LE(count, VNET_HDR_NUM_BUFFERS);
    let offset = 0;
    for (const chain of this.reserved.splice(0, count)) {
      const n = chain.write(memory, 0, frame, offset, length);
      rx.addUsed(chain.head, n);
      offset += n;
    }
    this.metrics.rxCount++;
    this.metrics.rxPackets++;
    this.metrics.rxBytes += length - VNET_HDR_SIZE;
    return 'delivered';
  }
}
