/** PUT /snapshot/create and PUT /snapshot/load bodies, and PATCH /vm. */
import * as wire from '../api/wire/definitions';
import { decode, DecodeError } from './decode';
import { checkResourceId } from './validate';

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
  const w = decode(wire.SnapshotCreateParams, value, where);
  return { memFilePath: w.mem_file_path, snapshotPath: w.snapshot_path, snapshotType: w.snapshot_type ?? 'Full' };
}

/** Whether the body uses the deprecated fields (Firecracker answers with `Deprecation: true`). */
export function hasDeprecatedLoadFields(value: unknown): boolean {
  const obj = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  return obj.mem_file_path != null || obj.enable_diff_snapshots != null;
}

export function parseSnapshotLoad(value: unknown, where = 'snapshot/load'): SnapshotLoadParams {
  const w = decode(wire.SnapshotLoadParams, value, where);
  if (w.mem_file_path != null && w.mem_backend != null) {
    const serde = 'too many fields: either `mem_backend` or `mem_file_path` exclusively is required.';
    throw new DecodeError(`${where}: ${serde}`, serde.slice(0, -1), []);
  }
  if (w.mem_file_path == null && w.mem_backend == null) {
    const serde = 'missing field: either `mem_backend` or `mem_file_path` is required';
    throw new DecodeError(`${where}: ${serde}.`, serde, []);
  }
  const memBackend: MemoryBackend = w.mem_backend != null
    ? { backendType: w.mem_backend.backend_type, backendPath: w.mem_backend.backend_path }
    : { backendType: 'File', backendPath: w.mem_file_path! };
  const params: SnapshotLoadParams = {
    snapshotPath: w.snapshot_path,
    memBackend,
    trackDirtyPages: (w.track_dirty_pages ?? false) || (w.enable_diff_snapshots ?? false),
    resumeVm: w.resume_vm ?? false,
    networkOverrides: (w.network_overrides ?? []).map((o, i) => ({
      ifaceId: checkResourceId(o.iface_id, 'iface_id', `${where}.network_overrides[${i}]`), hostDevName: o.host_dev_name,
    })),
    clockRealtime: w.clock_realtime ?? false,
  };
  if (w.vsock_override != null) params.vsockOverride = { udsPath: w.vsock_override.uds_path };
  return params;
}

/** PATCH /vm. */
export function parseVmState(value: unknown, where = 'vm'): 'Paused' | 'Resumed' {
  return decode(wire.Vm, value, where).state;
}
