/**
 * virtio-net's transmit side, one frame at a time (the device's LimitedDrain decides when):
 * chains are checked (a virtio-net and an Ethernet header present, no larger than the largest
 * frame), offered to MMDS when the interface carries it (frames for the metadata address are
 * answered inside the VMM), and otherwise written to the TAP straight from guest memory. A
 * malformed chain is returned unused and counted; nothing a guest writes can throw out of here.
 */
import type { GuestMemory } from '../../../memory/guest-memory';
import type { MmdsNetworkStack } from '../../../mmds/net/network-stack';
import type { DescriptorChain } from '../descriptor-chain';
import type { LogSink } from '../guest-log';
import type { Queue } from '../queue';
import { ETH_HEADER, MAX_BUFFER_SIZE, VNET_HDR_F_NEEDS_CSUM, VNET_HDR_SIZE } from './constants';
import type { NetMetrics } from './metrics';
import type { NetBackend } from './tap';

export interface TxContext {
  readonly ifaceId: string;
  readonly backend: NetBackend;
  readonly mmds: MmdsNetworkStack | undefined;
  readonly metrics: NetMetrics;
  /** Guest-triggered warnings (rate-limited), and the host's own errors. */
  readonly log: LogSink;
  readonly host: LogSink;
  /** The MAC the guest's frames should carry; undefined: not checked. */
  mac(): Buffer | undefined;
  /** MMDS took a frame: its timers need arming. */
  mmdsTookFrame(): void;
}

export class NetTx {
  /** A frame in one piece, for MMDS (which must parse it) and the TAP write after it. */
  private readonly frame = Buffer.alloc(MAX_BUFFER_SIZE);
  /** The source MAC of the frame being sent, for the spoofing count (no allocation per frame). */
  private readonly source = Buffer.alloc(6);

  constructor(private readonly ctx: TxContext) {}

  /** The next chain that holds a frame; malformed ones are returned to the driver on the way. */
  nextChain(tx: Queue): DescriptorChain | undefined {
    for (;;) {
      const chain = tx.pop();
      if (chain === undefined) return undefined;
      const why = chain.readableBytes < VNET_HDR_SIZE + ETH_HEADER ? `its ${chain.readableBytes} readable bytes are less than a virtio-net and an Ethernet header`
        : chain.readableBytes > MAX_BUFFER_SIZE ? `its ${chain.readableBytes} readable bytes are more than the largest frame (${MAX_BUFFER_SIZE})`
          : undefined;
      if (why === undefined) return chain;
      this.ctx.metrics.txMalformedFrames++;
      this.ctx.log.warn(`virtio-net ${this.ctx.ifaceId}: dropping the TX chain at descriptor ${chain.head}: ${why}.`);
      tx.addUsed(chain.head, 0);
    }
  }

  /** Sends the chain's frame (to MMDS or the TAP) and returns the chain to the driver. */
  transmit(memory: GuestMemory, tx: Queue, chain: DescriptorChain): void {
    const { metrics, mmds } = this.ctx;
    const length = chain.readableBytes;
    metrics.txCount++;
    let written: number;
    if (mmds !== undefined) {
      // MMDS needs the frame in one piece: copy it once, and send that copy when it is not for MMDS.
      chain.readInto(memory, 0, this.frame);
      const partial = (this.frame[0] & VNET_HDR_F_NEEDS_CSUM) !== 0;
      if (mmds.detour(this.frame.subarray(VNET_HDR_SIZE, length), { checksumPartial: partial })) {
        this.ctx.mmdsTookFrame();
        tx.addUsed(chain.head, 0);
        return;
      }
      this.checkSourceMac(this.frame.subarray(VNET_HDR_SIZE + 6, VNET_HDR_SIZE + 12));
      written = this.timedWrite([this.frame.subarray(0, length)]);
    } else {
      const views = chain.readable.map((s) => memory.view(s.addr, s.len));
      if (this.ctx.mac() !== undefined) this.checkSourceMac(chain.readInto(memory, VNET_HDR_SIZE + 6, this.source));
      written = this.timedWrite(views);
    }
    if (written < 0) {
      metrics.tapWriteFails++;
      metrics.txFails++;
      this.ctx.host.error(`virtio-net ${this.ctx.ifaceId}: writing a ${length - VNET_HDR_SIZE}-byte frame to the TAP ${this.ctx.backend.name} failed (errno ${-written}); dropped.`);
    } else {
      metrics.txPackets++;
      metrics.txBytes += length - VNET_HDR_SIZE;
    }
    tx.addUsed(chain.head, 0);
  }

  private timedWrite(bufs: readonly Uint8Array[]): number {
    const start = process.hrtime.bigint();
    const n = this.ctx.backend.writev(bufs);
    this.ctx.metrics.recordTapWrite(process.hrtime.bigint() - start);
    return n;
  }

  private checkSourceMac(source: Uint8Array): void {
    const mac = this.ctx.mac();
    if (mac !== undefined && !mac.equals(source)) this.ctx.metrics.txSpoofedMac++;
  }
}
