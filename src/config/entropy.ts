/** PUT /entropy, `entropy` in the config file: the virtio-rng device. */
import * as wire from '../api/wire/definitions';
import { decode } from './decode';
import { RateLimiterConfig, rateLimiterFromWire, rateLimiterToJson } from './rate-limiter';

export interface EntropyConfig {
  /** Limits the bytes (bandwidth) and requests (ops) the guest may draw. */
  rateLimiter?: RateLimiterConfig;
}

const WHERE = 'entropy';

export function parseEntropy(value: unknown, where = WHERE): EntropyConfig {
  const rateLimiter = rateLimiterFromWire(decode(wire.EntropyDevice, value, where).rate_limiter);
  return rateLimiter ? { rateLimiter } : {};
}

export function entropyToJson(c: EntropyConfig): wire.EntropyDevice {
  return { rate_limiter: c.rateLimiter ? rateLimiterToJson(c.rateLimiter) : null };
}
