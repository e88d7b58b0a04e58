import { requireFeature } from './features';
import { ConfigError, expectObject, optionalBoolean, optionalEnum, optionalInteger, rejectUnknownFields, requiredInteger } from './validate';

/** PUT /machine-config, `machine-config` in the config file. */
export interface MachineConfig {
  vcpuCount: number;
  memSizeMib: number;
  smt: boolean;
  trackDirtyPages: boolean;
  hugePages: 'None' | '2M';
}

export const MAX_VCPUS = 32;
/** Guest RAM must leave room for the MMIO gap handling and fit the host: 1 TiB is plenty. */
const MAX_MEM_MIB = 1024 * 1024;

export const DEFAULT_MACHINE_CONFIG: MachineConfig = {
  vcpuCount: 1,
  memSizeMib: 128,
  smt: false,
  trackDirtyPages: false,
  hugePages: 'None',
};

const WHERE = 'machine-config';
const FIELDS = ['vcpu_count', 'mem_size_mib', 'smt', 'track_dirty_pages', 'huge_pages', 'cpu_template'] as const;
export const CPU_TEMPLATES = ['C3', 'T2', 'T2S', 'T2CL', 'T2A', 'V1N1', 'None'] as const;

/** Fields a PUT or PATCH may carry; absent ones are undefined. */
export type MachineConfigUpdate = Partial<MachineConfig>;

function parseFields(value: unknown, where: string): MachineConfigUpdate {
  const obj = expectObject(value, where);
  rejectUnknownFields(obj, FIELDS, where);
  const template = optionalEnum(obj, 'cpu_template', where, CPU_TEMPLATES);
  // Static templates mask Intel/AMD/ARM features to match EC2 instance types; none exist here yet.
  if (template !== undefined && template !== 'None') requireFeature('cpu-templates');
  const u: MachineConfigUpdate = {};
  const vcpuCount = optionalInteger(obj, 'vcpu_count', where, 1, MAX_VCPUS);
  const memSizeMib = optionalInteger(obj, 'mem_size_mib', where, 1, MAX_MEM_MIB);
  const smt = optionalBoolean(obj, 'smt', where);
  const trackDirtyPages = optionalBoolean(obj, 'track_dirty_pages', where);
  const hugePages = optionalEnum(obj, 'huge_pages', where, ['None', '2M'] as const);
  if (vcpuCount !== undefined) u.vcpuCount = vcpuCount;
  if (memSizeMib !== undefined) u.memSizeMib = memSizeMib;
  if (smt !== undefined) u.smt = smt;
  if (trackDirtyPages !== undefined) u.trackDirtyPages = trackDirtyPages;
  if (hugePages !== undefined) u.hugePages = hugePages;
  return u;
}

/** PUT /machine-config and the config file: vcpu_count and mem_size_mib required, the rest defaulted. */
export function parseMachineConfig(value: unknown, where = WHERE): MachineConfig {
  const obj = expectObject(value, where);
  // Checked in the order serde reports them: unknown fields first, then missing ones.
  rejectUnknownFields(obj, FIELDS, where);
  requiredInteger(obj, 'vcpu_count', where, 1, MAX_VCPUS);
  requiredInteger(obj, 'mem_size_mib', where, 1, MAX_MEM_MIB);
  return applyMachineConfigUpdate({ ...DEFAULT_MACHINE_CONFIG }, parseFields(obj, where), where);
}

/** PATCH /machine-config: any subset of the fields, at least one. */
export function parseMachineConfigUpdate(value: unknown, where = WHERE): MachineConfigUpdate {
  const u = parseFields(value, where);
  if (Object.keys(expectObject(value, where)).filter((k) => (value as Record<string, unknown>)[k] !== null).length === 0) {
    throw new ConfigError('Empty PATCH request.');
  }
  return u;
}

/** Merges `update` into `base` and checks the result as a whole (the whole update fails or applies). */
export function applyMachineConfigUpdate(base: MachineConfig, update: MachineConfigUpdate, where = WHERE): MachineConfig {
  const merged: MachineConfig = { ...base, ...update };
  checkMachineConfig(merged, where);
  if (merged.hugePages !== 'None') requireFeature('huge-pages');
  return merged;
}

/** Rules that hold across fields, as Firecracker's machine-config validation. */
export function checkMachineConfig(c: MachineConfig, where = WHERE): void {
  if (c.smt && c.vcpuCount > 1 && c.vcpuCount % 2 !== 0) {
    throw new ConfigError(`${where}: with smt enabled, vcpu_count must be 1 or an even number (it is ${c.vcpuCount}).`);
  }
  if (c.hugePages === '2M' && c.memSizeMib % 2 !== 0) {
    throw new ConfigError(`${where}: with 2M huge pages, mem_size_mib must be a multiple of 2 (it is ${c.memSizeMib}).`);
  }
}

export function machineConfigToJson(c: MachineConfig): Record<string, unknown> {
  return {
    vcpu_count: c.vcpuCount,
    mem_size_mib: c.memSizeMib,
    smt: c.smt,
    track_dirty_pages: c.trackDirtyPages,
    huge_pages: c.hugePages,
  };
}
