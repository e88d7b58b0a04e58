/**
 * Per-drive counters. They only grow (the metrics system reports differences); names in the
 * JSON form follow Firecracker's block metrics where one exists, so dashboards carry over.
 */
export class BlockMetrics {
  /** Notifications of the request queue (ioeventfd or QueueNotify writes) and limiter wake-ups. */
  queueEvents = 0;
  readCount = 0;
  readBytes = 0;
  writeCount = 0;
  writeBytes = 0;
  flushCount = 0;
  getIdCount = 0;
  /** Requests the drive does not implement (completed with UNSUPP). */
  unsupportedCount = 0;
  /** Chains that are not a valid request: too short, no status byte, bad length, out of range. */
  invalidRequests = 0;
  /** Requests whose file I/O failed (EIO, ENOSPC, a vanished file): completed with IOERR. */
  ioErrors = 0;
  /** Writes refused because the drive is read-only. */
  readOnlyWrites = 0;
  /** Times the rate limiter stopped the queue. */
  rateLimiterThrottled = 0;
  /** Successful PATCH updates, and failed ones. */
  updates = 0;
  updateFails = 0;
  /** Requests in flight right now (Async), a gauge. */
  inFlight = 0;

  /** Counts a finished read, write or flush. */
  completed(op: 'read' | 'write' | 'flush', bytes: number, failed: boolean): void {
    if (failed) this.ioErrors++;
    else if (op === 'read') { this.readCount++; this.readBytes += bytes; }
    else if (op === 'write') { this.writeCount++; this.writeBytes += bytes; }
    else this.flushCount++;
  }

  toJson(): Record<string, number> {
    return {
      queue_event_count: this.queueEvents,
      read_count: this.readCount,
      read_bytes: this.readBytes,
      write_count: this.writeCount,
      write_bytes: this.writeBytes,
      flush_count: this.flushCount,
      get_id_count: this.getIdCount,
      unsupported_count: this.unsupportedCount,
      invalid_reqs_count: this.invalidRequests,
      execute_fails: this.ioErrors,
      read_only_write_fails: this.readOnlyWrites,
      rate_limiter_throttled_events: this.rateLimiterThrottled,
      update_count: this.updates,
      update_fails: this.updateFails,
      in_flight: this.inFlight,
    };
  }
}
