/** virtio-rng (entropy): what its spec and tests import. */
export { MAX_BYTES_PER_REQUEST, RNG_QUEUE_SIZE, VirtioRng } from './device';
export type { VirtioRngOptions } from './device';
export { RngMetrics } from './metrics';
