/** PUT/PATCH/GET /balloon and its sub-paths, `balloon` in the config file (virtio-balloon). */
import { optionalBoolean, optionalInteger, parseObject, requiredBoolean, requiredInteger } from './validate';

const U32 = 0xffff_ffff;
const U16 = 0xffff;

export interface BalloonConfig {
  amountMib: number;
  deflateOnOom: boolean;
  /** 0 disables statistics; they cannot be turned on or off after boot. */
  statsPollingIntervalS: number;
  freePageHinting: boolean;
  freePageReporting: boolean;
}

export function parseBalloon(value: unknown, where = 'balloon'): BalloonConfig {
  const obj = parseObject(value, ['amount_mib', 'deflate_on_oom', 'stats_polling_interval_s', 'free_page_hinting', 'free_page_reporting'], where);
  return {
    amountMib: requiredInteger(obj, 'amount_mib', where, 0, U32),
    deflateOnOom: requiredBoolean(obj, 'deflate_on_oom', where),
    statsPollingIntervalS: optionalInteger(obj, 'stats_polling_interval_s', where, 0, U16) ?? 0,
    freePageHinting: optionalBoolean(obj, 'free_page_hinting', where) ?? false,
    freePageReporting: optionalBoolean(obj, 'free_page_reporting', where) ?? false,
  };
}

/** PATCH /balloon: a new target size. */
export function parseBalloonUpdate(value: unknown, where = 'balloon'): { amountMib: number } {
  const obj = parseObject(value, ['amount_mib'], where);
  return { amountMib: requiredInteger(obj, 'amount_mib', where, 0, U32) };
}

/** PATCH /balloon/statistics. */
export function parseBalloonStatsUpdate(value: unknown, where = 'balloon/statistics'): { statsPollingIntervalS: number } {
  const obj = parseObject(value, ['stats_polling_interval_s'], where);
  return { statsPollingIntervalS: requiredInteger(obj, 'stats_polling_interval_s', where, 0, U16) };
}

/** PATCH /balloon/hinting/start; the body is optional. */
export function parseBalloonStartCmd(value: unknown, where = 'balloon/hinting/start'): { acknowledgeOnStop: boolean } {
  if (value === undefined) return { acknowledgeOnStop: false };
  const obj = parseObject(value, ['acknowledge_on_stop'], where);
  return { acknowledgeOnStop: optionalBoolean(obj, 'acknowledge_on_stop', where) ?? false };
}

export function balloonToJson(c: BalloonConfig): Record<string, unknown> {
  return {
    amount_mib: c.amountMib,
    deflate_on_oom: c.deflateOnOom,
    stats_polling_interval_s: c.statsPollingIntervalS,
    free_page_hinting: c.freePageHinting,
    free_page_reporting: c.freePageReporting,
  };
}
