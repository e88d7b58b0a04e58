/** PUT /snapshot/create and PUT /snapshot/load bodies, and PATCH /vm. */
import { ConfigError, optionalArray, optionalBoolean, optionalEnum, optionalString, parseObject, requiredEnum, requiredId, requiredString } from './validate';

export interface SnapshotCreateParams {
  memFilePath: string;
  snapshotPath: string;
  snapshotType: 'Full' | 'Diff';
}

export interface MemoryBackend {
  /** File: guest memory read from a file; Uffd: pages served by a process on this Unix socket. */
  backendType: 'File' | 'Uffd';
  backendPath: string;
}

export interface SnapshotLoadParams {
  snapshotPath: string;
  memBackend: MemoryBackend;
  trackDirtyPages: boolean;
  resumeVm: boolean;
  networkOverrides: { ifaceId: string; hostDevName: string }[];
  vsockOverride?: { udsPath: string };
  clockRealtime: boolean;
}

export function parseSnapshotCreate(value: unknown, where = 'snapshot/create'): SnapshotCreateParams {
  const obj = parseObject(value, ['mem_file_path', 'snapshot_path', 'snapshot_type'], where);
  return {
    memFilePath: requiredString(obj, 'mem_file_path', where),
    snapshotPath: requiredString(obj, 'snapshot_path', where),
    snapshotType: optionalEnum(obj, 'snapshot_type', where, ['Full', 'Diff'] as const) ?? 'Full',
  };
}

const LOAD_FIELDS = [
  'snapshot_path', 'mem_file_path', 'mem_backend', 'enable_diff_snapshots', 'track_dirty_pages', 'resume_vm',
  'network_overrides', 'vsock_override', 'clock_realtime',
];

export function parseSnapshotLoad(value: unknown, where = 'snapshot/load'): SnapshotLoadParams {
  const obj = parseObject(value, LOAD_FIELDS, where);
  const snapshotPath = requiredString(obj, 'snapshot_path', where);
  const memFilePath = optionalString(obj, 'mem_file_path', where);
  const hasBackend = obj.mem_backend !== undefined && obj.mem_backend !== null;
  if ((memFilePath !== undefined) === hasBackend) {
    throw new ConfigError(`${where}: give exactly one of \`mem_backend\` and \`mem_file_path\` (the deprecated form).`);
  }
  let memBackend: MemoryBackend;
  if (hasBackend) {
    const w = `${where}.mem_backend`;
    const b = parseObject(obj.mem_backend, ['backend_type', 'backend_path'], w);
    memBackend = { backendType: requiredEnum(b, 'backend_type', w, ['File', 'Uffd'] as const), backendPath: requiredString(b, 'backend_path', w) };
  } else {
    memBackend = { backendType: 'File', backendPath: memFilePath! };
  }
  const diff = optionalBoolean(obj, 'enable_diff_snapshots', where);
  const track = optionalBoolean(obj, 'track_dirty_pages', where);
  const params: SnapshotLoadParams = {
    snapshotPath,
    memBackend,
    trackDirtyPages: (track ?? false) || (diff ?? false),
    resumeVm: optionalBoolean(obj, 'resume_vm', where) ?? false,
    networkOverrides: optionalArray(obj, 'network_overrides', where, (v, w) => {
      const o = parseObject(v, ['iface_id', 'host_dev_name'], w);
      return { ifaceId: requiredId(o, 'iface_id', w), hostDevName: requiredString(o, 'host_dev_name', w) };
    }) ?? [],
    clockRealtime: optionalBoolean(obj, 'clock_realtime', where) ?? false,
  };
  if (obj.vsock_override !== undefined && obj.vsock_override !== null) {
    const o = parseObject(obj.vsock_override, ['uds_path'], `${where}.vsock_override`);
    params.vsockOverride = { udsPath: requiredString(o, 'uds_path', `${where}.vsock_override`) };
  }
  return params;
}

/** PATCH /vm. */
export function parseVmState(value: unknown, where = 'vm'): 'Paused' | 'Resumed' {
  const obj = parseObject(value, ['state'], where);
  return requiredEnum(obj, 'state', where, ['Paused', 'Resumed'] as const);
}
