export { RateLimiter, bucketUpdateOf } from './rate-limiter';
export type { BucketUpdate, RateLimiterOptions, TokenType } from './rate-limiter';
export { TokenBucket } from './token-bucket';
export type { Reduction } from './token-bucket';
export { monotonicClock, nodeTimers } from './clock';
export type { Clock, Timers, TimerHandle } from './clock';
export { FakeClock } from './fake-clock';
