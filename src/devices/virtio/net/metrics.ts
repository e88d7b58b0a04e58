/**
 * Counters of one network interface, in Firecracker's `net` metric names (the VMM reports
 * `net_<iface_id>` per interface and `net` as their sum). They only grow; the metrics system
 * writes differences.
 */
/** The latency aggregate's fields (the metrics line nests `a.b` keys into objects). */
export const TAP_WRITE_AGG = { sum: 'tap_write_agg.sum_us', min: 'tap_write_agg.min_us', max: 'tap_write_agg.max_us' } as const;
/** Levels, not totals: written as they are, not as differences. */
export const NET_GAUGES: readonly string[] = [TAP_WRITE_AGG.min, TAP_WRITE_AGG.max];

export class NetMetrics {
  activateFails = 0;
  /** Guest writes to the config space that were refused. */
  cfgFails = 0;
  /** The guest wrote a new MAC into the config space. */
  macAddressUpdates = 0;
  /** A frame waited because the RX queue had no buffer. */
  noRxAvailBuffer = 0;
  noTxAvailBuffer = 0;
  eventFails = 0;
  rxQueueEvents = 0;
  rxEventRateLimiter = 0;
  rxRateLimiterThrottled = 0;
  rxTapEvents = 0;
  rxBytes = 0;
  rxPackets = 0;
  /** Frames dropped on the way in (too short, larger than the guest's buffers can hold). */
  rxFails = 0;
  rxCount = 0;
  tapReadFails = 0;
  tapWriteFails = 0;
  txBytes = 0;
  /** Chains that are not a frame: shorter than a vnet header, longer than the largest frame. */
  txMalformedFrames = 0;
  txFails = 0;
  txCount = 0;
  txPackets = 0;
  txQueueEvents = 0;
  txRateLimiterEvents = 0;
  txRateLimiterThrottled = 0;
  /** Frames whose source MAC is not the interface's (they are still sent). */
  txSpoofedMac = 0;
  /** Frames held by the TX rate limiter at the end of a pass. */
  txRemainingReqs = 0;
  /** Time spent in TAP writes (Firecracker's tap_write_agg); min and max over the VM's life so far. */
  tapWriteSumUs = 0;
  tapWriteMinUs = 0;
  tapWriteMaxUs = 0;

  private tapWrites = 0;

  /** One TAP write took `ns` nanoseconds (counted in whole microseconds, as Firecracker's). */
  recordTapWrite(ns: bigint): void {
    const us = Number(ns / 1000n);
    this.tapWriteSumUs += us;
    this.tapWriteMinUs = this.tapWrites++ === 0 ? us : Math.min(this.tapWriteMinUs, us);
    this.tapWriteMaxUs = Math.max(this.tapWriteMaxUs, us);
  }

  toJson(): Record<string, number> {
    return {
      activate_fails: this.activateFails,
      cfg_fails: this.cfgFails,
      mac_address_updates: this.macAddressUpdates,
      no_rx_avail_buffer: this.noRxAvailBuffer,
      no_tx_avail_buffer: this.noTxAvailBuffer,
      event_fails: this.eventFails,
      rx_queue_event_count: this.rxQueueEvents,
      rx_event_rate_limiter_count: this.rxEventRateLimiter,
      rx_partial_writes: 0,
      rx_rate_limiter_throttled: this.rxRateLimiterThrottled,
      rx_tap_event_count: this.rxTapEvents,
      rx_bytes_count: this.rxBytes,
      rx_packets_count: this.rxPackets,
      rx_fails: this.rxFails,
      rx_count: this.rxCount,
      tap_read_fails: this.tapReadFails,
      tap_write_fails: this.tapWriteFails,
      [TAP_WRITE_AGG.sum]: this.tapWriteSumUs,
      [TAP_WRITE_AGG.min]: this.tapWriteMinUs,
      [TAP_WRITE_AGG.max]: this.tapWriteMaxUs,
      tx_bytes_count: this.txBytes,
      tx_malformed_frames: this.txMalformedFrames,
      tx_fails: this.txFails,
      tx_count: this.txCount,
      tx_packets_count: this.txPackets,
      tx_partial_reads: 0,
      tx_queue_event_count: this.txQueueEvents,
      tx_rate_limiter_event_count: this.txRateLimiterEvents,
      tx_rate_limiter_throttled: this.txRateLimiterThrottled,
      tx_spoofed_mac_count: this.txSpoofedMac,
      tx_remaining_reqs_count: this.txRemainingReqs,
    };
  }
}

/** The `net` group: every interface's counters added up (aggregates: their sums, min and max 0, as Firecracker's). */
export function sumNetMetrics(groups: readonly Record<string, number>[]): Record<string, number> {
  const sum: Record<string, number> = new NetMetrics().toJson();
  for (const g of groups) for (const [k, v] of Object.entries(g)) if (!NET_GAUGES.includes(k)) sum[k] = (sum[k] ?? 0) + v;
  return sum;
}
