/** What device authors and the VMM builder import. */
export * from './constants';
export { DescriptorChain } from './descriptor-chain';
export type { Segment } from './descriptor-chain';
export { readConfigBytes } from './device';
export type { VirtioDevice, VirtioInterrupt } from './device';
export { featureBit, hasFeature, TRANSPORT_FEATURES } from './features';
export { GuestTriggeredLog } from './guest-log';
export type { LogSink } from './guest-log';
export * from './mmio-slots';
export { MmioTransport } from './mmio-transport';
export type { MmioTransportOptions } from './mmio-transport';
export { Queue } from './queue';
