/** Counters of the balloon; JSON names are Firecracker's `balloon` metrics group. */
export class BalloonMetrics {
  /** The driver's activation failed. */
  activateFails = 0;
  /** Inflate and deflate queue events processed. */
  inflateCount = 0;
  deflateCount = 0;
  /** Stats buffers received, and ones that could not be read. */
  statsUpdates = 0;
  statsUpdateFails = 0;
  /** Chains refused or pages outside guest RAM, over all queues. */
  eventFails = 0;
  /** Free page reporting: chains, bytes dropped on the host, failures. */
  reportCount = 0;
  reportFreedBytes = 0;
  reportFails = 0;
  /** Free page hinting: hint buffers, bytes dropped, failures. */
  hintCount = 0;
  hintFreedBytes = 0;
  hintFails = 0;

  toJson(): Record<string, number> {
    return {
      activate_fails: this.activateFails,
      inflate_count: this.inflateCount,
      stats_updates_count: this.statsUpdates,
      stats_update_fails: this.statsUpdateFails,
      deflate_count: this.deflateCount,
      event_fails: this.eventFails,
      free_page_report_count: this.reportCount,
      free_page_report_freed: this.reportFreedBytes,
      free_page_report_fails: this.reportFails,
      free_page_hint_count: this.hintCount,
      free_page_hint_freed: this.hintFreedBytes,
      free_page_hint_fails: this.hintFails,
    };
  }
}
