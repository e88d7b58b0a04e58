/**
 * Firecracker's strict metrics schema for tests (its tests' validate_fc_metrics: every group and
 * field required, no others; behaviours.md section 13). The field lists are written out here,
 * independently of src/metrics/fc-schema.ts, so a field dropped from the writer's list fails.
 */
const AGG = '{min_us,max_us,sum_us}';
const w = (s: string) => s.trim().split(/\s+/);
const BLOCK = w(`activate_fails cfg_fails no_avail_buffer event_fails execute_fails invalid_reqs_count flush_count
  queue_event_count rate_limiter_event_count update_count update_fails read_bytes write_bytes read_count write_count
  rate_limiter_throttled_events io_engine_throttled_events remaining_reqs_count read_agg${AGG} write_agg${AGG}`);
const NET = w(`activate_fails cfg_fails mac_address_updates no_rx_avail_buffer no_tx_avail_buffer event_fails
  rx_queue_event_count rx_event_rate_limiter_count rx_partial_writes rx_rate_limiter_throttled rx_tap_event_count
  rx_bytes_count rx_packets_count rx_fails rx_count tap_read_fails tap_write_fails tx_bytes_count tx_malformed_frames
  tx_fails tx_count tx_packets_count tx_partial_reads tx_queue_event_count tx_rate_limiter_event_count
  tx_rate_limiter_throttled tx_spoofed_mac_count tx_remaining_reqs_count tap_write_agg${AGG}`);
const PMEM = w('activate_fails cfg_fails event_fails queue_event_count');
const REQUIRED: Record<string, string[]> = {
  api_server: w('process_startup_time_us process_startup_time_cpu_us sync_response_fails sync_vmm_send_timeout_count'),
  balloon: w(`activate_fails inflate_count stats_updates_count stats_update_fails deflate_count event_fails
    free_page_report_count free_page_report_freed free_page_report_fails free_page_hint_count free_page_hint_freed free_page_hint_fails`),
  block: BLOCK,
  deprecated_api: w('deprecated_http_api_calls deprecated_cmd_line_api_calls'),
  get_api_requests: w('instance_info_count machine_cfg_count mmds_count vmm_version_count hotplug_memory_count'),
  i8042: w('error_count missed_read_count missed_write_count read_count reset_count write_count'),
  latencies_us: w(`full_create_snapshot diff_create_snapshot load_snapshot pause_vm resume_vm vmm_full_create_snapshot
    vmm_diff_create_snapshot vmm_load_snapshot vmm_pause_vm vmm_resume_vm`),
  logger: w('missed_metrics_count metrics_fails missed_log_count log_fails rate_limited_log_count'),
  mmds: w(`rx_accepted rx_accepted_err rx_accepted_unusual rx_bad_eth rx_invalid_token rx_no_token rx_count tx_bytes
    tx_count tx_errors tx_frames connections_created connections_destroyed`),
  net: NET,
  patch_api_requests: w(`drive_count drive_fails network_count network_fails machine_cfg_count machine_cfg_fails
    mmds_count mmds_fails hotplug_memory_count hotplug_memory_fails pmem_count pmem_fails`),
  put_api_requests: w(`actions_count actions_fails boot_source_count boot_source_fails drive_count drive_fails
    logger_count logger_fails machine_cfg_count machine_cfg_fails cpu_cfg_count cpu_cfg_fails metrics_count
    metrics_fails network_count network_fails mmds_count mmds_fails vsock_count vsock_fails serial_count serial_fails
    hotplug_memory_count hotplug_memory_fails pmem_count pmem_fails`),
  seccomp: ['num_faults'],
  vcpu: w(`exit_io_in exit_io_out exit_mmio_read exit_mmio_write failures kvmclock_ctrl_fails exit_io_in_agg${AGG}
    exit_io_out_agg${AGG} exit_mmio_read_agg${AGG} exit_mmio_write_agg${AGG}`),
  vmm: w('device_events panic_count'),
  uart: w('error_count flush_count missed_read_count missed_write_count read_count write_count rate_limiter_dropped_bytes'),
  signals: w('sigbus sigsegv sigxfsz sigxcpu sigpipe sighup sigill'),
  vsock: w(`activate_fails cfg_fails rx_queue_event_fails tx_queue_event_fails ev_queue_event_fails muxer_event_fails
    conn_event_fails rx_queue_event_count tx_queue_event_count rx_bytes_count tx_bytes_count rx_packets_count
    tx_packets_count conns_added conns_killed conns_removed killq_resync tx_flush_fails tx_write_fails rx_read_fails`),
  entropy: w(`activate_fails entropy_event_fails entropy_event_count entropy_bytes host_rng_fails
    entropy_rate_limiter_throttled rate_limiter_event_count`),
  interrupts: w('triggers config_updates'),
  memory_hotplug: w(`activate_fails queue_event_fails queue_event_count plug_agg${AGG} plug_count plug_bytes plug_fails
    unplug_agg${AGG} unplug_count unplug_bytes unplug_fails unplug_discard_fails unplug_all_agg${AGG} unplug_all_count
    unplug_all_fails state_agg${AGG} state_count state_fails`),
  pmem: PMEM,
};

/** Problems in `line` under the strict schema: missing or extra groups and fields, non-numbers. */
export function violations(line: Record<string, unknown>): string[] {
  const out: string[] = [];
  const schema: Record<string, string[]> = { ...REQUIRED };
  for (const k of Object.keys(line)) {
    if (k.startsWith('block_')) schema[k] = BLOCK;
    if (k.startsWith('net_')) schema[k] = NET;
    if (k.startsWith('pmem_')) schema[k] = PMEM;
  }
  if (typeof line.utc_timestamp_ms !== 'number') out.push('utc_timestamp_ms is not a number');
  for (const k of Object.keys(line)) if (k !== 'utc_timestamp_ms' && !(k in schema)) out.push(`extra group ${k}`);
  for (const [group, fields] of Object.entries(schema)) {
    const g = line[group] as Record<string, unknown> | undefined;
    if (g === undefined || typeof g !== 'object') { out.push(`missing group ${group}`); continue; }
    const want = new Map(fields.map((f) => { const m = /^(\w+)\{(.*)\}$/.exec(f); return m ? [m[1], m[2].split(',')] : [f, undefined]; }));
    for (const k of Object.keys(g)) if (!want.has(k)) out.push(`extra field ${group}.${k}`);
    for (const [f, sub] of want) {
      const v = g[f];
      if (sub === undefined) { if (typeof v !== 'number') out.push(`${group}.${f} missing or not a number`); continue; }
      const o = v as Record<string, unknown> | undefined;
      if (!o || typeof o !== 'object') { out.push(`${group}.${f} missing`); continue; }
      if (Object.keys(o).sort().join() !== [...sub].sort().join()) out.push(`${group}.${f} has ${Object.keys(o).join()}`);
      for (const s of sub) if (typeof o[s] !== 'number') out.push(`${group}.${f}.${s} not a number`);
    }
  }
  return out;
}

