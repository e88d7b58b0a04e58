/** PUT/PATCH/GET /balloon and its sub-paths, `balloon` in the config file (virtio-balloon). */
import * as wire from '../api/wire/definitions';
import { decode } from './decode';

export interface BalloonConfig {
  amountMib: number;
  deflateOnOom: boolean;
  /** 0 disables statistics; they cannot be turned on or off after boot. */
  statsPollingIntervalS: number;
  freePageHinting: boolean;
  freePageReporting: boolean;
}

export function parseBalloon(value: unknown, where = 'balloon'): BalloonConfig {
  const w = decode(wire.Balloon, value, where);
  return {
    amountMib: w.amount_mib,
    deflateOnOom: w.deflate_on_oom,
    statsPollingIntervalS: w.stats_polling_interval_s ?? 0,
    freePageHinting: w.free_page_hinting ?? false,
    freePageReporting: w.free_page_reporting ?? false,
  };
}

/** PATCH /balloon: a new target size. */
export function parseBalloonUpdate(value: unknown, where = 'balloon'): { amountMib: number } {
  return { amountMib: decode(wire.BalloonUpdate, value, where).amount_mib };
}

/** PATCH /balloon/statistics. */
export function parseBalloonStatsUpdate(value: unknown, where = 'balloon/statistics'): { statsPollingIntervalS: number } {
  return { statsPollingIntervalS: decode(wire.BalloonStatsUpdate, value, where).stats_polling_interval_s };
}

/** PATCH /balloon/hinting/start; the body is optional. */
export function parseBalloonStartCmd(value: unknown, where = 'balloon/hinting/start'): { acknowledgeOnStop: boolean } {
  if (value === undefined) return { acknowledgeOnStop: false };
  return { acknowledgeOnStop: decode(wire.BalloonStartCmd, value, where).acknowledge_on_stop ?? false };
}

export function balloonToJson(c: BalloonConfig): wire.Balloon {
  return {
    amount_mib: c.amountMib,
    deflate_on_oom: c.deflateOnOom,
    stats_polling_interval_s: c.statsPollingIntervalS,
    free_page_hinting: c.freePageHinting,
    free_page_reporting: c.freePageReporting,
  };
}
