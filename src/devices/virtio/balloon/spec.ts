/**
 * virtio-balloon in the device manager: one device when the VM has a `balloon` section. Pages
 * the guest gives back are dropped with madvise(MADV_DONTNEED) on guest RAM's host mapping.
 * The device code loads only when a VM has a balloon.
 */
import type { BalloonConfig } from '../../../config/balloon';
import { native } from '../../../native';
import type { VirtioDeviceSpec } from '../device-spec';
import type { BalloonSavedState } from './device';

const device = () => require('./device') as typeof import('./device');

const MADV_DONTNEED = 4;

/** The balloon section, with what the device must know of guest RAM's backing. */
export interface BalloonDeviceConfig extends BalloonConfig {
  /** 2 MiB when guest RAM is hugetlbfs-backed (machine-config huge_pages "2M"). */
  hugePageSize?: number;
}

/** A PATCH after boot, as the API's balloon actions hand it to `update`. */
export type BalloonUpdate = { amountMib: number } | { statsPollingIntervalS: number };

/** The API's name of the one balloon device. */
export const BALLOON_ID = 'balloon';

export const balloonSpec: VirtioDeviceSpec<BalloonDeviceConfig> = {
  type: 'balloon',
  instances: (config) => (config.balloon !== undefined ? [config.balloon] : []),
  create(config, ctx) {
    const shim = native();
    const balloon = new (device().VirtioBalloon)({
      ...config,
      discard: (bytes) => shim.madvise(bytes, MADV_DONTNEED),
      timers: ctx.timers,
      log: ctx.log,
    });
    return {
      id: BALLOON_ID,
      device: balloon,
      metricsGroup: 'balloon',
      metrics: () => balloon.metrics.toJson(),
      update(body: unknown) {
        const u = body as BalloonUpdate;
        if ('amountMib' in u) balloon.setTarget(u.amountMib);
        else balloon.setStatsInterval(u.statsPollingIntervalS);
      },
      save: () => ({ inFlight: 0, heldChains: balloon.heldChains(), state: balloon.saveState() }),
      restore: (state) => balloon.restoreState(state as BalloonSavedState),
      dispose: () => balloon.dispose(),
    };
  },
  trainingSection: () => ({ section: 'balloon', value: { amount_mib: 0, deflate_on_oom: false, stats_polling_interval_s: 1 } }),
};
