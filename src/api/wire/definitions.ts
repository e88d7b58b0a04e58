/**
 * Every request and response body of the API, as schema values named after Firecracker's
 * OpenAPI definitions (field names, required fields and types as Firecracker v1.16.1 has them),
 * each with its TypeScript type derived from the schema.
 */
import { array, bool, freeObject, int, Infer, MAX_EXACT_INTEGER, object, str } from './schema';

const U16 = 0xffff;
const U32 = 0xffff_ffff;
const u64 = (description?: string) => int({ minimum: 0, maximum: MAX_EXACT_INTEGER, format: 'int64', description });

export const TokenBucket = object('TokenBucket', {
  size: u64('Capacity in tokens (bytes or operations).'),
  one_time_burst: u64('Extra tokens spent once before the regular budget.'),
  refill_time: u64('Milliseconds to refill the bucket from empty to `size`.'),
}, ['size', 'refill_time'], { description: 'A token bucket; `size` or `refill_time` of 0 means no limit.' });
export type TokenBucket = Infer<typeof TokenBucket>;

export const RateLimiter = object('RateLimiter', {
  bandwidth: TokenBucket,
  ops: TokenBucket,
}, [], { description: 'Limits bytes (bandwidth) and requests (ops); an absent bucket limits nothing.' });
export type RateLimiter = Infer<typeof RateLimiter>;

export const Balloon = object('Balloon', {
  amount_mib: int({ minimum: 0, maximum: U32 }),
  deflate_on_oom: bool(),
  stats_polling_interval_s: int({ minimum: 0, maximum: U16 }),
  free_page_hinting: bool(),
  free_page_reporting: bool(),
}, ['amount_mib', 'deflate_on_oom'], { description: 'The balloon device (virtio-balloon).' });
export type Balloon = Infer<typeof Balloon>;

export const BalloonUpdate = object('BalloonUpdate', { amount_mib: int({ minimum: 0, maximum: U32 }) }, ['amount_mib']);
export type BalloonUpdate = Infer<typeof BalloonUpdate>;

const stat = () => int({ minimum: 0, format: 'int64' });
export const BalloonStats = object('BalloonStats', {
  target_pages: int({ minimum: 0 }), actual_pages: int({ minimum: 0 }), target_mib: int({ minimum: 0 }), actual_mib: int({ minimum: 0 }),
  swap_in: stat(), swap_out: stat(), major_faults: stat(), minor_faults: stat(), free_memory: stat(), total_memory: stat(),
  available_memory: stat(), disk_caches: stat(), hugetlb_allocations: stat(), hugetlb_failures: stat(), oom_kill: stat(),
  alloc_stall: stat(), async_scan: stat(), direct_scan: stat(), async_reclaim: stat(), direct_reclaim: stat(),
}, ['target_pages', 'actual_pages', 'target_mib', 'actual_mib']);
export type BalloonStats = Infer<typeof BalloonStats>;

export const BalloonStartCmd = object('BalloonStartCmd', { acknowledge_on_stop: bool() });
export type BalloonStartCmd = Infer<typeof BalloonStartCmd>;

export const BalloonHintingStatus = object('BalloonHintingStatus', { host_cmd: int({ minimum: 0 }), guest_cmd: int({ minimum: 0 }) }, ['host_cmd']);
export type BalloonHintingStatus = Infer<typeof BalloonHintingStatus>;

export const BalloonStatsUpdate = object('BalloonStatsUpdate', { stats_polling_interval_s: int({ minimum: 0, maximum: U16 }) }, ['stats_polling_interval_s']);
export type BalloonStatsUpdate = Infer<typeof BalloonStatsUpdate>;

export const BootSource = object('BootSource', {
  kernel_image_path: str({ description: 'Host path of the guest kernel (ELF vmlinux or bzImage).' }),
  boot_args: str({ description: 'Kernel command line.' }),
  initrd_path: str({ description: 'Host path of the initrd.' }),
}, ['kernel_image_path'], { description: 'The kernel to boot, its command line and initrd.' });
export type BootSource = Infer<typeof BootSource>;

export const CPU_TEMPLATES = ['C3', 'T2', 'T2S', 'T2CL', 'T2A', 'V1N1', 'None'] as const;
export const CpuTemplate = str({ name: 'CpuTemplate', enum: CPU_TEMPLATES, default: 'None', description: 'A static CPU template (deprecated by Firecracker).' });
export type CpuTemplate = Infer<typeof CpuTemplate>;

export const CpuidRegisterModifier = object('CpuidRegisterModifier', {
  register: str({ enum: ['eax', 'ebx', 'ecx', 'edx'] }),
  bitmap: str({ description: '"0b" and 32 characters among 0, 1 and x (keep).' }),
}, ['register', 'bitmap']);
export const CpuidLeafModifier = object('CpuidLeafModifier', {
  leaf: str(), subleaf: str(), flags: int({ minimum: 0, maximum: 0x7fff_ffff, format: 'int32' }), modifiers: array(CpuidRegisterModifier),
}, ['leaf', 'subleaf', 'flags', 'modifiers']);
export const MsrModifier = object('MsrModifier', { addr: str(), bitmap: str({ description: '"0b" and 64 characters among 0, 1 and x.' }) }, ['addr', 'bitmap']);
export const ArmRegisterModifier = object('ArmRegisterModifier', { addr: str(), bitmap: str() }, ['addr', 'bitmap']);
export const VcpuFeatures = object('VcpuFeatures', { index: int({ format: 'int32' }), bitmap: str() }, ['index', 'bitmap']);
export const CpuConfig = object('CpuConfig', {
  kvm_capabilities: array(str(), { description: 'KVM_CAP_* numbers the host must have; "!N" drops a requirement.' }),
  cpuid_modifiers: array(CpuidLeafModifier),
  msr_modifiers: array(MsrModifier),
  reg_modifiers: array(ArmRegisterModifier, { description: 'aarch64 only.' }),
  vcpu_features: array(VcpuFeatures, { description: 'aarch64 only.' }),
}, [], { description: 'A custom CPU template.' });
export type CpuConfig = Infer<typeof CpuConfig>;

export const Drive = object('Drive', {
  drive_id: str(),
  partuuid: str({ description: 'Root partition UUID, for root=PARTUUID=.' }),
  is_root_device: bool(),
  cache_type: str({ enum: ['Unsafe', 'Writeback'], default: 'Unsafe' }),
  is_read_only: bool(),
  path_on_host: str(),
  rate_limiter: RateLimiter,
  io_engine: str({ enum: ['Sync', 'Async'], default: 'Sync' }),
  socket: str({ description: 'vhost-user-block backend socket (excludes path_on_host).' }),
}, ['drive_id', 'is_root_device'], { description: 'A block device.' });
export type Drive = Infer<typeof Drive>;

export const PartialDrive = object('PartialDrive', { drive_id: str(), path_on_host: str(), rate_limiter: RateLimiter }, ['drive_id']);
export type PartialDrive = Infer<typeof PartialDrive>;

export const Pmem = object('Pmem', {
  id: str(), path_on_host: str(), root_device: bool(), read_only: bool(), rate_limiter: RateLimiter,
}, ['id', 'path_on_host'], { description: 'A virtio-pmem device backed by a host file.' });
export type Pmem = Infer<typeof Pmem>;

export const PartialPmem = object('PartialPmem', { id: str(), rate_limiter: RateLimiter }, ['id']);
export type PartialPmem = Infer<typeof PartialPmem>;

export const ErrorBody = object('Error', { fault_message: str() }, [], { description: 'The body of every error answer.' });
export type ErrorBody = Infer<typeof ErrorBody>;

export const INSTANCE_ACTIONS = ['FlushMetrics', 'InstanceStart', 'SendCtrlAltDel'] as const;
export const InstanceActionInfo = object('InstanceActionInfo', { action_type: str({ enum: INSTANCE_ACTIONS }) }, ['action_type']);
export type InstanceActionInfo = Infer<typeof InstanceActionInfo>;

export const InstanceInfo = object('InstanceInfo', {
  app_name: str(), id: str(), state: str({ enum: ['Not started', 'Running', 'Paused'] }), vmm_version: str(),
}, ['app_name', 'id', 'state', 'vmm_version']);
export type InstanceInfo = Infer<typeof InstanceInfo>;

export const LOG_LEVEL_NAMES = ['Error', 'Warning', 'Info', 'Debug', 'Trace', 'Off'] as const;
export const Logger = object('Logger', {
  level: str({ enum: LOG_LEVEL_NAMES, caseInsensitive: true, aliases: { warn: 'Warning' }, description: 'Any case; "warn" stands for Warning.' }),
  log_path: str(),
  show_level: bool(),
  show_log_origin: bool(),
  module: str({ description: 'Only messages from modules with this prefix are logged.' }),
});
export type Logger = Infer<typeof Logger>;

export const MachineConfiguration = object('MachineConfiguration', {
  cpu_template: CpuTemplate,
  smt: bool(),
  mem_size_mib: int({ minimum: 0 }),
  track_dirty_pages: bool(),
  vcpu_count: int({ minimum: 1, maximum: 32 }),
  huge_pages: str({ enum: ['None', '2M'] }),
}, ['mem_size_mib', 'vcpu_count'], { description: 'vCPUs and memory; PATCH may give any subset.' });
export type MachineConfiguration = Infer<typeof MachineConfiguration>;

export const MemoryBackend = object('MemoryBackend', {
  backend_type: str({ enum: ['File', 'Uffd'] }), backend_path: str(),
}, ['backend_type', 'backend_path']);
export type MemoryBackend = Infer<typeof MemoryBackend>;

export const Metrics = object('Metrics', { metrics_path: str() }, ['metrics_path']);
export type Metrics = Infer<typeof Metrics>;

export const MmdsConfig = object('MmdsConfig', {
  version: str({ enum: ['V1', 'V2'], default: 'V1' }),
  network_interfaces: array(str()),
  ipv4_address: str<string>({ default: '169.254.169.254' }),
  imds_compat: bool(),
}, ['network_interfaces']);
export type MmdsConfig = Infer<typeof MmdsConfig>;

export const MmdsContentsObject = freeObject('MmdsContentsObject', { description: 'The MMDS data store: any JSON object.' });
/** GET /mmds answers the store inline, as Firecracker documents it. */
export const MmdsContents = freeObject(undefined, { description: 'The MMDS data store.' });

export const NetworkInterface = object('NetworkInterface', {
  guest_mac: str(), host_dev_name: str(), iface_id: str(),
  mtu: int({ minimum: 68, maximum: 65535 }),
  rx_rate_limiter: RateLimiter, tx_rate_limiter: RateLimiter,
}, ['host_dev_name', 'iface_id']);
export type NetworkInterface = Infer<typeof NetworkInterface>;

export const PartialNetworkInterface = object('PartialNetworkInterface', {
  iface_id: str(), rx_rate_limiter: RateLimiter, tx_rate_limiter: RateLimiter,
}, ['iface_id']);
export type PartialNetworkInterface = Infer<typeof PartialNetworkInterface>;

export const SnapshotCreateParams = object('SnapshotCreateParams', {
  mem_file_path: str(), snapshot_path: str(), snapshot_type: str({ enum: ['Full', 'Diff'] }),
}, ['mem_file_path', 'snapshot_path']);
export type SnapshotCreateParams = Infer<typeof SnapshotCreateParams>;

export const NetworkOverride = object('NetworkOverride', { iface_id: str(), host_dev_name: str() }, ['iface_id', 'host_dev_name']);
export const VsockOverride = object('VsockOverride', { uds_path: str() }, ['uds_path']);
export const SnapshotLoadParams = object('SnapshotLoadParams', {
  enable_diff_snapshots: bool({ description: 'Deprecated: use track_dirty_pages.' }),
  track_dirty_pages: bool(),
  mem_file_path: str({ description: 'Deprecated: use mem_backend.' }),
  mem_backend: MemoryBackend,
  snapshot_path: str(),
  resume_vm: bool(),
  network_overrides: array(NetworkOverride),
  vsock_override: VsockOverride,
  clock_realtime: bool(),
}, ['snapshot_path']);
export type SnapshotLoadParams = Infer<typeof SnapshotLoadParams>;

export const Vm = object('Vm', { state: str({ enum: ['Paused', 'Resumed'] }) }, ['state']);
export type Vm = Infer<typeof Vm>;

export const EntropyDevice = object('EntropyDevice', { rate_limiter: RateLimiter });
export type EntropyDevice = Infer<typeof EntropyDevice>;

export const SerialDevice = object('SerialDevice', { serial_out_path: str(), rate_limiter: TokenBucket });
export type SerialDevice = Infer<typeof SerialDevice>;

export const MemoryHotplugConfig = object('MemoryHotplugConfig', {
  total_size_mib: int({ minimum: 1, maximum: 1024 * 1024 }),
  slot_size_mib: int({ minimum: 128, maximum: 1024 * 1024, default: 128 }),
  block_size_mib: int({ minimum: 2, maximum: 1024 * 1024, default: 2 }),
}, [], { description: 'The virtio-mem device; total_size_mib must be given (Firecracker documents it as optional).' });
export type MemoryHotplugConfig = Infer<typeof MemoryHotplugConfig>;

export const MemoryHotplugSizeUpdate = object('MemoryHotplugSizeUpdate', { requested_size_mib: int({ minimum: 0, maximum: 1024 * 1024 }) }, [],
  { description: 'requested_size_mib must be given (Firecracker documents it as optional).' });
export type MemoryHotplugSizeUpdate = Infer<typeof MemoryHotplugSizeUpdate>;

export const MemoryHotplugStatus = object('MemoryHotplugStatus', {
  total_size_mib: int(), slot_size_mib: int(), block_size_mib: int(), plugged_size_mib: int(), requested_size_mib: int(),
});
export type MemoryHotplugStatus = Infer<typeof MemoryHotplugStatus>;

export const FirecrackerVersion = object('FirecrackerVersion', { firecracker_version: str() }, ['firecracker_version']);
export type FirecrackerVersion = Infer<typeof FirecrackerVersion>;

export const Vsock = object('Vsock', {
  guest_cid: int({ minimum: 3, maximum: U32 }),
  uds_path: str(),
  vsock_id: str({ description: 'Deprecated.' }),
}, ['guest_cid', 'uds_path']);
export type Vsock = Infer<typeof Vsock>;

export const FullVmConfiguration = object('FullVmConfiguration', {
  balloon: Balloon,
  drives: array(Drive),
  'boot-source': BootSource,
  'cpu-config': CpuConfig,
  logger: Logger,
  'machine-config': MachineConfiguration,
  metrics: Metrics,
  'memory-hotplug': MemoryHotplugConfig,
  'mmds-config': MmdsConfig,
  'network-interfaces': array(NetworkInterface),
  pmem: array(Pmem),
  vsock: Vsock,
  entropy: EntropyDevice,
}, [], { description: 'The whole configuration, as GET /vm/config answers it and --config-file reads it (a config file may also have a `serial` section, a SerialDevice).' });
export type FullVmConfiguration = Infer<typeof FullVmConfiguration>;
