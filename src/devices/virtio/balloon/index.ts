/** virtio-balloon: what its spec, the API and tests import. */
export { BalloonError, CHAINS_PER_TURN, MAX_PFNS_PER_CHAIN, PAGES_PER_TURN, pagesFor, VirtioBalloon } from './device';
export type { BalloonSettings, BalloonStatsSnapshot, HintingStatus, VirtioBalloonOptions } from './device';
export { BalloonMetrics } from './metrics';
export { PageDiscarder } from './page-discard';
export { encodeStats, parseStats, STAT_NAMES } from './stats';
