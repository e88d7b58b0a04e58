/** virtio-rng (entropy): what the VMM (src/vmm/virtio-devices.ts) and tests import. */
export { MAX_BYTES_PER_REQUEST, RNG_QUEUE_SIZE, VirtioRng } from './device';
export type { VirtioRngOptions } from './device';
export { RngMetrics } from './metrics';
