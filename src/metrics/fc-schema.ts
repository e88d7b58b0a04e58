/**
 * The groups and fields of Firecracker's metrics line, as its integration tests require them
 * (a strict schema: every field present, nothing else; behaviours.md section 13). Tools written
 * for Firecracker's metrics validate Sparkler's against this list, so the writer shapes every
 * line to it: counters a Sparkler source does not have are written as 0, and a source's fields
 * that Firecracker does not define stay out of the file.
 */

/** A group: its integer fields and its latency aggregates ({min_us, max_us, sum_us}). */
export interface GroupSchema {
  readonly counters: readonly string[];
  readonly aggregates?: readonly string[];
}

const counters = (...names: string[]): GroupSchema => ({ counters: names });

const BLOCK: GroupSchema = {
  counters: [
    'activate_fails', 'cfg_fails', 'no_avail_buffer', 'event_fails', 'execute_fails', 'invalid_reqs_count',
    'flush_count', 'queue_event_count', 'rate_limiter_event_count', 'update_count', 'update_fails', 'read_bytes',
    'write_bytes', 'read_count', 'write_count', 'rate_limiter_throttled_events', 'io_engine_throttled_events',
    'remaining_reqs_count',
  ],
  aggregates: ['read_agg', 'write_agg'],
};

const NET: GroupSchema = {
  counters: [
    'activate_fails', 'cfg_fails', 'mac_address_updates', 'no_rx_avail_buffer', 'no_tx_avail_buffer', 'event_fails',
    'rx_queue_event_count', 'rx_event_rate_limiter_count', 'rx_partial_writes', 'rx_rate_limiter_throttled',
    'rx_tap_event_count', 'rx_bytes_count', 'rx_packets_count', 'rx_fails', 'rx_count', 'tap_read_fails',
    'tap_write_fails', 'tx_bytes_count', 'tx_malformed_frames', 'tx_fails', 'tx_count', 'tx_packets_count',
    'tx_partial_reads', 'tx_queue_event_count', 'tx_rate_limiter_event_count', 'tx_rate_limiter_throttled',
    'tx_spoofed_mac_count', 'tx_remaining_reqs_count',
  ],
  aggregates: ['tap_write_agg'],
};

const PMEM = counters('activate_fails', 'cfg_fails', 'event_fails', 'queue_event_count');

/**
 * Devices with one group per instance (`block_<drive_id>`...) and an aggregate group (`block`)
 * whose counters are the sums and whose aggregates are {min_us: 0, max_us: 0, sum_us: sum}.
 */
export const PER_DEVICE_GROUPS: Readonly<Record<string, GroupSchema>> = { block: BLOCK, net: NET, pmem: PMEM };

/** Every other group; a line always has all of them, zeros for devices the VM does not have. */
export const FIXED_GROUPS: Readonly<Record<string, GroupSchema>> = {
  api_server: counters('process_startup_time_us', 'process_startup_time_cpu_us', 'sync_response_fails', 'sync_vmm_send_timeout_count'),
  balloon: counters(
    'activate_fails', 'inflate_count', 'stats_updates_count', 'stats_update_fails', 'deflate_count', 'event_fails',
    'free_page_report_count', 'free_page_report_freed', 'free_page_report_fails',
    'free_page_hint_count', 'free_page_hint_freed', 'free_page_hint_fails',
  ),
  deprecated_api: counters('deprecated_http_api_calls', 'deprecated_cmd_line_api_calls'),
  get_api_requests: counters('instance_info_count', 'machine_cfg_count', 'mmds_count', 'vmm_version_count', 'hotplug_memory_count'),
  i8042: counters('error_count', 'missed_read_count', 'missed_write_count', 'read_count', 'reset_count', 'write_count'),
  latencies_us: counters(
    'full_create_snapshot', 'diff_create_snapshot', 'load_snapshot', 'pause_vm', 'resume_vm',
    'vmm_full_create_snapshot', 'vmm_diff_create_snapshot', 'vmm_load_snapshot', 'vmm_pause_vm', 'vmm_resume_vm',
  ),
  logger: counters('missed_metrics_count', 'metrics_fails', 'missed_log_count', 'log_fails', 'rate_limited_log_count'),
  mmds: counters(
    'rx_accepted', 'rx_accepted_err', 'rx_accepted_unusual', 'rx_bad_eth', 'rx_invalid_token', 'rx_no_token', 'rx_count',
    'tx_bytes', 'tx_count', 'tx_errors', 'tx_frames', 'connections_created', 'connections_destroyed',
  ),
  patch_api_requests: counters(
    'drive_count', 'drive_fails', 'network_count', 'network_fails', 'machine_cfg_count', 'machine_cfg_fails',
    'mmds_count', 'mmds_fails', 'hotplug_memory_count', 'hotplug_memory_fails', 'pmem_count', 'pmem_fails',
  ),
  put_api_requests: counters(
    'actions_count', 'actions_fails', 'boot_source_count', 'boot_source_fails', 'drive_count', 'drive_fails',
    'logger_count', 'logger_fails', 'machine_cfg_count', 'machine_cfg_fails', 'cpu_cfg_count', 'cpu_cfg_fails',
    'metrics_count', 'metrics_fails', 'network_count', 'network_fails', 'mmds_count', 'mmds_fails',
    'vsock_count', 'vsock_fails', 'serial_count', 'serial_fails', 'hotplug_memory_count', 'hotplug_memory_fails',
    'pmem_count', 'pmem_fails',
  ),
  seccomp: counters('num_faults'),
  vcpu: {
    counters: ['exit_io_in', 'exit_io_out', 'exit_mmio_read', 'exit_mmio_write', 'failures', 'kvmclock_ctrl_fails'],
    aggregates: ['exit_io_in_agg', 'exit_io_out_agg', 'exit_mmio_read_agg', 'exit_mmio_write_agg'],
  },
  vmm: counters('device_events', 'panic_count'),
  uart: counters('error_count', 'flush_count', 'missed_read_count', 'missed_write_count', 'read_count', 'write_count', 'rate_limiter_dropped_bytes'),
  signals: counters('sigbus', 'sigsegv', 'sigxfsz', 'sigxcpu', 'sigpipe', 'sighup', 'sigill'),
  vsock: counters(
    'activate_fails', 'cfg_fails', 'rx_queue_event_fails', 'tx_queue_event_fails', 'ev_queue_event_fails',
    'muxer_event_fails', 'conn_event_fails', 'rx_queue_event_count', 'tx_queue_event_count', 'rx_bytes_count',
    'tx_bytes_count', 'rx_packets_count', 'tx_packets_count', 'conns_added', 'conns_killed', 'conns_removed',
    'killq_resync', 'tx_flush_fails', 'tx_write_fails', 'rx_read_fails',
  ),
  entropy: counters(
    'activate_fails', 'entropy_event_fails', 'entropy_event_count', 'entropy_bytes', 'host_rng_fails',
    'entropy_rate_limiter_throttled', 'rate_limiter_event_count',
  ),
  interrupts: counters('triggers', 'config_updates'),
  memory_hotplug: {
    counters: [
      'activate_fails', 'queue_event_fails', 'queue_event_count', 'plug_count', 'plug_bytes', 'plug_fails',
      'unplug_count', 'unplug_bytes', 'unplug_fails', 'unplug_discard_fails', 'unplug_all_count', 'unplug_all_fails',
      'state_count', 'state_fails',
    ],
    aggregates: ['plug_agg', 'unplug_agg', 'unplug_all_agg', 'state_agg'],
  },
};

/**
 * Sparkler fields that carry a Firecracker field under another name or group:
 * `[target group, target field, source group, source field]`.
 */
export const RENAMED_FIELDS: readonly (readonly [string, string, string, string])[] = [
  ['uart', 'rate_limiter_dropped_bytes', 'uart_rate_limiter', 'rate_limiter_dropped_bytes'],
];
