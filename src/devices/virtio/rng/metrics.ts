/** Counters of the entropy device; JSON names follow Firecracker's entropy metrics. */
export class RngMetrics {
  /** Notifications of the queue. */
  queueEvents = 0;
  /** Requests filled, and the bytes given to the guest. */
  requests = 0;
  bytes = 0;
  /** Chains with no device-writable buffer (returned empty). */
  invalidRequests = 0;
  /** The host CSPRNG failed (the request is returned empty). */
  hostRngFails = 0;
  /** Times the rate limiter stopped the queue. */
  rateLimiterThrottled = 0;

  toJson(): Record<string, number> {
    return {
      entropy_event_count: this.queueEvents,
      entropy_request_count: this.requests,
      entropy_bytes: this.bytes,
      entropy_event_fails: this.invalidRequests,
      host_rng_fails: this.hostRngFails,
      entropy_rate_limiter_throttled: this.rateLimiterThrottled,
    };
  }
}
