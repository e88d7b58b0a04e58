/** virtio-net on a TAP: what its spec and tests import. */
export { tapOffloads, VirtioNet } from './device';
export type { NetUpdate, VirtioNetOptions } from './device';
export { NetMetrics, sumNetMetrics } from './metrics';
export { errnoText, NetBackend, Tap, TapError, TapShim } from './tap';
