/**
 * What flintlock's Firecracker provider hands the VMM (liquidmetal-dev/flintlock
 * infrastructure/firecracker): the command line (create.go fcProvider.Create), the config file
 * (config.go CreateConfig with WithMicroVM and WithState; field names and omitempty from types.go
 * VmmConfig) and the metadata file (types.go Metadata: {"latest": {name: string}}).
 */

export function flintlockArgs(uid: string, configPath: string, metadataPath: string): string[] {
  return ['--id', uid, '--boot-timer', '--no-api', '--config-file', configPath, '--metadata', metadataPath];
}

export interface FlintlockVm {
  vcpus: number;
  memMiB: number;
  kernel: string;
  initrd?: string;
  cmdline: string;
  rootVolume: string;
  /** The interface flintlock made (a TAP on its bridge), with MMDS allowed on it. */
  iface?: { guestDeviceName: string; hostDevName: string; mac: string };
  logPath: string;
  metricsPath: string;
}

/** The VmmConfig JSON: omitempty fields left out, the rest always present. */
export function flintlockConfig(vm: FlintlockVm): Record<string, unknown> {
  return {
    drives: [{ drive_id: 'root', path_on_host: vm.rootVolume, is_root_device: true, is_read_only: false, cache_type: 'Unsafe' }],
    'boot-source': { kernel_image_path: vm.kernel, ...(vm.initrd ? { initrd_path: vm.initrd } : {}), boot_args: vm.cmdline },
    logger: { log_path: vm.logPath, level: 'Debug', show_level: true, show_log_origin: true },
    'machine-config': { vcpu_count: vm.vcpus, mem_size_mib: vm.memMiB, smt: false, track_dirty_pages: false },
    metrics: { metrics_path: vm.metricsPath },
    ...(vm.iface ? { 'mmds-config': { version: 'V1', network_interfaces: [vm.iface.guestDeviceName] } } : {}),
    'network-interfaces': vm.iface ? [{ iface_id: vm.iface.guestDeviceName, host_dev_name: vm.iface.hostDevName, guest_mac: vm.iface.mac }] : [],
  };
}

/** Metadata{Latest: vm.Spec.Metadata.Items}: cloud-init's NoCloud seed served from MMDS. */
export function flintlockMetadata(items: Record<string, string>): { latest: Record<string, string> } {
  return { latest: items };
}
