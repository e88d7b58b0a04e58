/**
 * virtio-balloon, the traditional memory balloon (spec 5.5), with Firecracker's semantics:
 * - inflate (queue 0) and deflate (queue 1) carry arrays of le32 4 KiB page frame numbers; an
 *   inflated page is dropped on the host (page-discard.ts) so the VMM's RSS falls;
 * - the stats queue (when stats_polling_interval_s > 0): the driver's one buffer of (tag, value)
 *   pairs is read and held; every interval the device returns it, which asks the driver for a
 *   fresh one;
 * - free page hinting: the host starts a run by writing a new command id in the config space,
 *   the driver answers with that id, a stream of free blocks (dropped on the host) and STOP; the
 *   host writes DONE to let the guest reuse them;
 * - free page reporting: the driver hands over free ranges, dropped and returned at once.
 * Queues exist only for the features offered and are numbered in that order, as Linux numbers
 * them (virtio-mmio gives absent queues no index).
 * The driver is not trusted: chains with page numbers outside RAM are refused page by page,
 * garbage stats are skipped, and a flood of queue work is done in slices between loop turns.
 */
import type { GuestMemory } from '../../../memory/guest-memory';
import type { Timers, TimerHandle } from '../../../ratelimit/clock';
import { SparklerError } from '../../../errors';
import { DeviceType } from '../constants';
import type { DescriptorChain } from '../descriptor-chain';
import type { VirtioDevice, VirtioInterrupt } from '../device';
import { readConfigBytes } from '../device';
import { GuestTriggeredLog, LogSink } from '../guest-log';
import type { Queue } from '../queue';
import {
  BalloonFeature, CONFIG_SIZE, ConfigOffset, HINT_CMD_ID_DONE, HINT_CMD_ID_FIRST, HINT_CMD_ID_STOP, PAGES_PER_MIB, QUEUE_SIZE,
} from './constants';
import { BalloonMetrics } from './metrics';
import { DiscardFn, PageCounts, PageDiscarder } from './page-discard';
import { GuestStats, parseStats } from './stats';

export class BalloonError extends SparklerError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'BalloonError';
  }
}

export interface BalloonSettings {
  amountMib: number;
  deflateOnOom: boolean;
  statsPollingIntervalS: number;
  freePageHinting: boolean;
  freePageReporting: boolean;
}

export interface VirtioBalloonOptions extends BalloonSettings {
  /** madvise(MADV_DONTNEED) over a view of guest RAM; 0 or -errno. */
  discard: DiscardFn;
  timers: Timers;
  /** 2 MiB when guest RAM is hugetlbfs-backed. */
  hugePageSize?: number;
  log?: LogSink;
}

/** GET /balloon/statistics, in Firecracker's field names. */
export interface BalloonStatsSnapshot extends GuestStats {
  target_pages: number;
  actual_pages: number;
  target_mib: number;
  actual_mib: number;
}

export interface HintingStatus {
  host_cmd: number;
  guest_cmd?: number;
}

/** The device's part of a snapshot (the held stats buffer travels as the stats queue's held chain). */
export interface BalloonSavedState {
  amountMib: number;
  statsPollingIntervalS: number;
  actualPages: number;
  hintCmdId: number;
  guestHintCmd?: number;
  ackOnStop: boolean;
  nextHintCmd: number;
  stats: GuestStats;
}

type Role = 'inflate' | 'deflate' | 'stats' | 'hint' | 'report';

/** At most this many page numbers are read from one chain (Linux sends 256). */
export const MAX_PFNS_PER_CHAIN = 4096;
/**
 * Work per loop turn: this many chains, or chains holding this many page numbers (a madvise
 * each at worst); the rest wait for the next turn, so a flooding guest cannot stall the VMM.
 */
export const CHAINS_PER_TURN = 64;
export const PAGES_PER_TURN = 16 * 1024;

interface Active {
  memory: GuestMemory;
  interrupt: VirtioInterrupt;
  /** The role of each queue index the driver uses. */
  roles: Role[];
  queues: Map<Role, Queue>;
  pages: PageDiscarder;
}

export class VirtioBalloon implements VirtioDevice {
  readonly deviceType = DeviceType.Balloon;
  readonly features: bigint;
  readonly queueMaxSizes: readonly number[];
  readonly metrics = new BalloonMetrics();
  private readonly log: LogSink;
  private settings: BalloonSettings;
  private targetPages: number;
  private actualPages = 0;
  private hintCmdId = HINT_CMD_ID_STOP;
  private guestHintCmd: number | undefined;
  private ackOnStop = false;
  private nextHintCmd = HINT_CMD_ID_FIRST;
  private stats: GuestStats = {};
  private heldStatsHead: number | undefined;
  private statsTimer: TimerHandle | undefined;
  private readonly pendingTurn = new Set<Role>();
  private turnTimer: TimerHandle | undefined;
  private active: Active | undefined;

  constructor(private readonly opts: VirtioBalloonOptions) {
    this.settings = { ...opts };
    this.log = opts.log ?? new GuestTriggeredLog();
    this.targetPages = pagesFor(opts.amountMib);
    let features = 0n;
    const bit = (b: number) => { features |= 1n << BigInt(b); };
    if (opts.statsPollingIntervalS > 0) bit(BalloonFeature.STATS_VQ);
    if (opts.deflateOnOom) bit(BalloonFeature.DEFLATE_ON_OOM);
    if (opts.freePageHinting) bit(BalloonFeature.FREE_PAGE_HINT);
    if (opts.freePageReporting) bit(BalloonFeature.PAGE_REPORTING);
    this.features = features;
    this.queueMaxSizes = rolesFor(features).map(() => QUEUE_SIZE);
  }

  /** Every queue of the accepted features is needed; a declined feature's queue has no index. */
  requiredQueues(accepted: bigint): number {
    return rolesFor(accepted & this.features).length;
  }

  readConfig(offset: number, data: Buffer): void {
    const config = Buffer.alloc(CONFIG_SIZE);
    config.writeUInt32LE(this.targetPages, ConfigOffset.NUM_PAGES);
    config.writeUInt32LE(this.actualPages, ConfigOffset.ACTUAL);
    config.writeUInt32LE(this.hintCmdId, ConfigOffset.FREE_PAGE_HINT_CMD_ID);
    readConfigBytes(config, offset, data);
  }

  /** The driver writes only `actual` (spec 5.5.6.1); other writes are ignored. */
  writeConfig(offset: number, data: Buffer): void {
    if (offset === ConfigOffset.ACTUAL && data.length === 4) this.actualPages = data.readUInt32LE(0);
  }

  activate(memory: GuestMemory, queues: readonly Queue[], interrupt: VirtioInterrupt, features: bigint): void {
    const roles = rolesFor(features & this.features);
    const map = new Map<Role, Queue>();
    roles.forEach((role, i) => { if (queues[i] !== undefined) map.set(role, queues[i]); });
    this.active = { memory, interrupt, roles, queues: map, pages: new PageDiscarder(memory, this.opts.discard, this.opts.hugePageSize) };
    if (map.has('stats')) {
      // Linux makes its first stats buffer available and kicks before it sets DRIVER_OK, when
      // the kick finds no active device: take that buffer now or the driver waits forever.
      this.run('stats');
      this.armStatsTimer();
    }
  }

  reset(): void {
    this.active = undefined;
    this.heldStatsHead = undefined;
    this.actualPages = 0;
    this.guestHintCmd = undefined;
    this.clearTimers();
  }

  dispose(): void {
    this.reset();
  }

  processQueue(index: number): void {
    const a = this.active;
    if (a === undefined) return;
    const role = a.roles[index];
    if (role !== undefined) this.run(role);
  }

  // --- snapshots ------------------------------------------------------------------------------

  /** Per queue index, 1 where a chain is popped but held (the stats buffer until the next poll). */
  heldChains(): number[] {
    const roles = this.active?.roles ?? [];
    return roles.map((role) => (role === 'stats' && this.heldStatsHead !== undefined ? 1 : 0));
  }

  saveState(): BalloonSavedState {
    const { amountMib, statsPollingIntervalS } = this.settings;
    return {
      amountMib, statsPollingIntervalS, actualPages: this.actualPages, hintCmdId: this.hintCmdId,
      ...(this.guestHintCmd === undefined ? {} : { guestHintCmd: this.guestHintCmd }),
      ackOnStop: this.ackOnStop, nextHintCmd: this.nextHintCmd, stats: { ...this.stats },
    };
  }

  /**
   * On the fresh device of a restore, before its transport activates it: activation takes the
   * held stats buffer again (the restored queue pops it once more) and re-arms the stats timer.
   */
  restoreState(s: BalloonSavedState): void {
    if ((s.statsPollingIntervalS === 0) !== (this.settings.statsPollingIntervalS === 0)) {
      throw new BalloonError('ESNAPSHOTDEVICE', `virtio-balloon: the snapshot's statistics interval (${s.statsPollingIntervalS} s) does not match the configured device's (${this.settings.statsPollingIntervalS} s).`);
    }
    this.targetPages = pagesFor(s.amountMib);
    this.settings = { ...this.settings, amountMib: s.amountMib, statsPollingIntervalS: s.statsPollingIntervalS };
    this.actualPages = s.actualPages >>> 0;
    this.hintCmdId = s.hintCmdId >>> 0;
    this.guestHintCmd = s.guestHintCmd;
    this.ackOnStop = s.ackOnStop;
    this.nextHintCmd = s.nextHintCmd >>> 0;
    this.stats = { ...s.stats };
  }

  // --- the API side ---------------------------------------------------------------------------

  get config(): BalloonSettings {
    return { ...this.settings };
  }

  get isActivated(): boolean {
    return this.active !== undefined;
  }

  /** PATCH /balloon: a new target; the driver hears of it through a config-change interrupt. */
  setTarget(amountMib: number): void {
    this.targetPages = pagesFor(amountMib);
    this.settings.amountMib = amountMib;
    this.active?.interrupt.signalConfigChange();
  }

  /** PATCH /balloon/statistics: stats cannot be switched on or off after boot (Firecracker's rule). */
  setStatsInterval(seconds: number): void {
    if ((seconds === 0) !== (this.settings.statsPollingIntervalS === 0)) {
      throw new BalloonError('ESTATSCHANGE', 'Statistics cannot be enabled/disabled after activation.');
    }
    this.settings.statsPollingIntervalS = seconds;
    if (this.active?.queues.has('stats')) {
      this.requestStats();
      this.armStatsTimer();
    }
  }

  /** GET /balloon/statistics. */
  statistics(): BalloonStatsSnapshot {
    if (this.settings.statsPollingIntervalS === 0) {
      throw new BalloonError('ESTATSDISABLED', 'Statistics are not enabled for the balloon device.');
    }
    return {
      target_pages: this.targetPages,
      actual_pages: this.actualPages,
      target_mib: Math.floor(this.targetPages / PAGES_PER_MIB),
      actual_mib: Math.floor(this.actualPages / PAGES_PER_MIB),
      ...this.stats,
    };
  }

  /** PATCH /balloon/hinting/start: a new command id; the guest answers with it and its free blocks. */
  startHinting(acknowledgeOnStop: boolean): void {
    this.requireHinting();
    this.hintCmdId = this.nextHintCmd;
    this.nextHintCmd = this.nextHintCmd >= 0xffff_ffff ? HINT_CMD_ID_FIRST : this.nextHintCmd + 1;
    this.ackOnStop = acknowledgeOnStop;
    this.active!.interrupt.signalConfigChange();
  }

  /** PATCH /balloon/hinting/stop: DONE lets the guest reuse the pages it hinted. */
  stopHinting(): void {
    this.requireHinting();
    this.hintDone();
  }

  /** GET /balloon/hinting/status. */
  hintingStatus(): HintingStatus {
    if (!this.settings.freePageHinting) throw hintingDisabled();
    return this.guestHintCmd === undefined ? { host_cmd: this.hintCmdId } : { host_cmd: this.hintCmdId, guest_cmd: this.guestHintCmd };
  }

  // --- queues -----------------------------------------------------------------------------------

  /** Runs up to CHAINS_PER_TURN chains of `role`; the rest go on in a later loop turn. */
  private run(role: Role): void {
    const a = this.active;
    const queue = a?.queues.get(role);
    if (a === undefined || queue === undefined) return;
    let n = 0;
    let pages = 0;
    for (; n < CHAINS_PER_TURN && pages < PAGES_PER_TURN; n++) {
      const chain = queue.pop();
      if (chain === undefined) break;
      pages += Math.min(Math.floor(chain.readableBytes / 4), MAX_PFNS_PER_CHAIN);
      try {
        this.handleChain(role, a, queue, chain);
      } catch (err) {
        this.metrics.eventFails++;
        this.log.error(`virtio-balloon: ${role} chain at descriptor ${chain.head} failed: ${(err as Error).message}`);
        queue.addUsed(chain.head, 0);
      }
    }
    a.interrupt.signalUsed(queue);
    if (n === CHAINS_PER_TURN || pages >= PAGES_PER_TURN) this.continueLater(role);
  }

  private continueLater(role: Role): void {
    this.pendingTurn.add(role);
    if (this.turnTimer !== undefined) return;
    this.turnTimer = this.opts.timers.setTimeout(() => {
      this.turnTimer = undefined;
      const roles = [...this.pendingTurn];
      this.pendingTurn.clear();
      for (const r of roles) this.run(r);
    }, 0);
  }

  private handleChain(role: Role, a: Active, queue: Queue, chain: DescriptorChain): void {
    switch (role) {
      case 'inflate':
      case 'deflate': {
        const pfns = readPfns(a.memory, chain);
        const counts = role === 'inflate' ? a.pages.inflate(pfns) : a.pages.deflate(pfns);
        if (role === 'inflate') this.metrics.inflateCount++; else this.metrics.deflateCount++;
        this.noteRefused(role, counts, chain.head);
        queue.addUsed(chain.head, 0);
        return;
      }
      case 'stats':
        return this.takeStats(a, queue, chain);
      case 'hint':
        return this.takeHint(a, queue, chain);
      case 'report': {
        this.metrics.reportCount++;
        for (const s of chain.writable) {
          const counts = a.pages.discardRange(s.addr, s.len);
          this.metrics.reportFreedBytes += counts.discardedBytes;
          this.metrics.reportFails += counts.failures;
        }
        queue.addUsed(chain.head, 0);
      }
    }
  }

  private noteRefused(role: Role, counts: PageCounts, head: number): void {
    if (counts.failures > 0) this.log.error(`virtio-balloon: the host refused to drop ${counts.failures} range(s) of ${role}d pages.`);
    if (counts.refused === 0) return;
    this.metrics.eventFails++;
    this.log.warn(`virtio-balloon: ${counts.refused} page(s) of the ${role} chain at descriptor ${head} lie outside guest RAM; ignored.`);
  }

  /** The driver's stats buffer: read it, hold it until the next poll. */
  private takeStats(a: Active, queue: Queue, chain: DescriptorChain): void {
    if (this.heldStatsHead !== undefined) {
      // A second buffer while one is held: the driver restarted its cycle; return the old one.
      queue.addUsed(this.heldStatsHead, 0);
    }
    this.heldStatsHead = chain.head;
    const bytes = chain.read(a.memory, 0, chain.readableBytes);
    if (bytes.length === 0) {
      this.metrics.statsUpdateFails++;
      this.log.warn('virtio-balloon: the stats buffer has no device-readable bytes.');
      return;
    }
    const { stats, unknownTags } = parseStats(bytes);
    for (const tag of unknownTags) this.log.warn(`balloon: unknown stats update tag: ${tag}`);
    this.stats = stats;
    this.metrics.statsUpdates++;
  }

  /** Returns the held stats buffer: the driver fills a new one and sends it back. */
  private requestStats(): void {
    const a = this.active;
    const queue = a?.queues.get('stats');
    if (a === undefined || queue === undefined || this.heldStatsHead === undefined) return;
    queue.addUsed(this.heldStatsHead, 0);
    this.heldStatsHead = undefined;
    a.interrupt.signalUsed(queue);
  }

  private armStatsTimer(): void {
    if (this.statsTimer !== undefined) this.opts.timers.clearTimeout(this.statsTimer);
    this.statsTimer = undefined;
    const seconds = this.settings.statsPollingIntervalS;
    if (seconds === 0 || this.active === undefined) return;
    this.statsTimer = this.opts.timers.setTimeout(() => {
      this.statsTimer = undefined;
      this.requestStats();
      this.armStatsTimer();
    }, seconds * 1000);
  }

  /**
   * A hinting chain: a device-readable le32 is a command id (the run's id to begin, STOP at its
   * end); device-writable buffers are free blocks, dropped while the run the guest answered is
   * the one the host asked for.
   */
  private takeHint(a: Active, queue: Queue, chain: DescriptorChain): void {
    if (chain.readableBytes >= 4) {
      const cmd = chain.read(a.memory, 0, 4).readUInt32LE(0);
      this.guestHintCmd = cmd;
      if (cmd === HINT_CMD_ID_STOP && this.ackOnStop && this.hintCmdId >= HINT_CMD_ID_FIRST) this.hintDone();
    }
    if (chain.writableBytes > 0) {
      this.metrics.hintCount++;
      const running = this.hintCmdId >= HINT_CMD_ID_FIRST && this.guestHintCmd === this.hintCmdId;
      if (running) {
        for (const s of chain.writable) {
          const counts = a.pages.discardRange(s.addr, s.len);
          this.metrics.hintFreedBytes += counts.discardedBytes;
          this.metrics.hintFails += counts.failures;
        }
      }
    }
    queue.addUsed(chain.head, 0);
  }

  private hintDone(): void {
    this.hintCmdId = HINT_CMD_ID_DONE;
    this.active?.interrupt.signalConfigChange();
  }

  private requireHinting(): void {
    if (!this.settings.freePageHinting) throw hintingDisabled();
    if (this.active === undefined) throw new BalloonError('ENOTACTIVE', 'Device not activated yet.');
  }

  private clearTimers(): void {
    if (this.statsTimer !== undefined) this.opts.timers.clearTimeout(this.statsTimer);
    if (this.turnTimer !== undefined) this.opts.timers.clearTimeout(this.turnTimer);
    this.statsTimer = undefined;
    this.turnTimer = undefined;
    this.pendingTurn.clear();
  }
}

const hintingDisabled = () => new BalloonError('EHINTINGDISABLED', 'Attempting to use hinting when not enabled.');

/** amount_mib as 4 KiB pages; it must fit the le32 num_pages field. */
export function pagesFor(amountMib: number): number {
  const pages = amountMib * PAGES_PER_MIB;
  if (!Number.isSafeInteger(pages) || pages > 0xffff_ffff) {
    throw new BalloonError('ETOOMANYPAGES', 'Amount of pages requested cannot fit in `u32`.');
  }
  return pages;
}

/** The queue roles of a feature set, in queue-index order (spec 5.5.2). */
function rolesFor(features: bigint): Role[] {
  const has = (b: number) => (features & (1n << BigInt(b))) !== 0n;
  const roles: Role[] = ['inflate', 'deflate'];
  if (has(BalloonFeature.STATS_VQ)) roles.push('stats');
  if (has(BalloonFeature.FREE_PAGE_HINT)) roles.push('hint');
  if (has(BalloonFeature.PAGE_REPORTING)) roles.push('report');
  return roles;
}

/** The le32 page numbers of a chain's device-readable bytes (at most MAX_PFNS_PER_CHAIN). */
function readPfns(memory: GuestMemory, chain: DescriptorChain): Uint32Array {
  const count = Math.min(Math.floor(chain.readableBytes / 4), MAX_PFNS_PER_CHAIN);
  const bytes = chain.read(memory, 0, count * 4);
  const pfns = new Uint32Array(count);
  for (let i = 0; i < count; i++) pfns[i] = bytes.readUInt32LE(i * 4);
  return pfns;
}
