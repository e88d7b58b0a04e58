/** PUT /entropy, `entropy` in the config file: the virtio-rng device. */
import { parseRateLimiter, RateLimiterConfig, rateLimiterToJson } from './rate-limiter';
import { expectObject, rejectUnknownFields } from './validate';

export interface EntropyConfig {
  /** Limits the bytes (bandwidth) and requests (ops) the guest may draw. */
  rateLimiter?: RateLimiterConfig;
}

const WHERE = 'entropy';

export function parseEntropy(value: unknown, where = WHERE): EntropyConfig {
  const obj = expectObject(value, where);
  rejectUnknownFields(obj, ['rate_limiter'], where);
  const rateLimiter = parseRateLimiter(obj.rate_limiter, `${where}.rate_limiter`);
  return rateLimiter ? { rateLimiter } : {};
}

export function entropyToJson(c: EntropyConfig): Record<string, unknown> {
  return { rate_limiter: c.rateLimiter ? rateLimiterToJson(c.rateLimiter) : null };
}
