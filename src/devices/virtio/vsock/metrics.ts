/** Counters of the vsock device; JSON names are Firecracker's `vsock` metrics. */
export class VsockMetrics {
  activateFails = 0;
  cfgFails = 0;
  rxQueueEventFails = 0;
  txQueueEventFails = 0;
  evQueueEventFails = 0;
  muxerEventFails = 0;
  connEventFails = 0;
  rxQueueEventCount = 0;
  txQueueEventCount = 0;
  /** rx: towards the guest; tx: from the guest (the queues' names). */
  rxBytes = 0;
  txBytes = 0;
  rxPackets = 0;
  txPackets = 0;
  connsAdded = 0;
  connsKilled = 0;
  connsRemoved = 0;
  killqResync = 0;
  txFlushFails = 0;
  txWriteFails = 0;
  rxReadFails = 0;

  toJson(): Record<string, number> {
    return {
      activate_fails: this.activateFails,
      cfg_fails: this.cfgFails,
      rx_queue_event_fails: this.rxQueueEventFails,
      tx_queue_event_fails: this.txQueueEventFails,
      ev_queue_event_fails: this.evQueueEventFails,
      muxer_event_fails: this.muxerEventFails,
      conn_event_fails: this.connEventFails,
      rx_queue_event_count: this.rxQueueEventCount,
      tx_queue_event_count: this.txQueueEventCount,
      rx_bytes_count: this.rxBytes,
      tx_bytes_count: this.txBytes,
      rx_packets_count: this.rxPackets,
      tx_packets_count: this.txPackets,
      conns_added: this.connsAdded,
      conns_killed: this.connsKilled,
      conns_removed: this.connsRemoved,
      killq_resync: this.killqResync,
      tx_flush_fails: this.txFlushFails,
      tx_write_fails: this.txWriteFails,
      rx_read_fails: this.rxReadFails,
    };
  }
}
