/** virtio-rng in the device manager: one device when the VM has an `entropy` section. */
import type { EntropyConfig } from '../../../config/entropy';
import type { VirtioDeviceSpec } from '../device-spec';

const device = () => require('./device') as typeof import('./device');

export const rngSpec: VirtioDeviceSpec<EntropyConfig> = {
  type: 'rng',
  instances: (config) => (config.entropy !== undefined ? [config.entropy] : []),
  create(entropy, ctx) {
    const rng = new (device().VirtioRng)({ rateLimiter: entropy.rateLimiter, log: ctx.log, clock: ctx.clock, timers: ctx.timers });
    return {
      id: 'rng',
      device: rng,
      metricsGroup: 'entropy',
      metrics: () => rng.metrics.toJson(),
      dispose: () => rng.dispose(),
      save: () => ({ inFlight: 0, heldChains: [rng.holdsRequest ? 1 : 0] }),
    };
  },
  trainingSection: () => ({ section: 'entropy', value: {} }),
};
