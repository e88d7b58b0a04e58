/** virtio-blk: what its spec and tests import. */
export { VirtioBlock } from './device';
export type { BlockUpdate, CacheType, IoEngineKind, VirtioBlockOptions } from './device';
export { DiskFile, DriveFileError, nodeFileOps } from './disk';
export type { FileOps } from './disk';
export { AsyncEngine, SyncEngine } from './engine';
export type { IoEngine } from './engine';
export { BlockMetrics } from './metrics';
export * from './constants';
