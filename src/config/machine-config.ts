import * as wire from '../api/wire/definitions';
import { partial } from '../api/wire/schema';
import { decode } from './decode';
import { requireFeature } from './features';
import { ConfigError } from './validate';

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
export const CPU_TEMPLATES = wire.CPU_TEMPLATES;

/** Fields a PUT or PATCH may carry; absent ones are undefined. */
export type MachineConfigUpdate = Partial<MachineConfig>;

/** Firecracker's words for a memory size it cannot map (its tests match them). */
export const MEMORY_SIZE_PHRASE = 'The memory size (MiB) is either 0, or not a multiple of the configured page size.';

function fromWire(w: { [K in keyof wire.MachineConfiguration]?: wire.MachineConfiguration[K] | null }, where: string): MachineConfigUpdate {
  const template = w.cpu_template;
  // Static templates mask Intel/AMD/ARM features to match EC2 instance types; none exist here yet.
  if (template != null && template !== 'None') requireFeature('cpu-templates');
  if (w.mem_size_mib != null && w.mem_size_mib > MAX_MEM_MIB) {
    throw new ConfigError(`${where}: field \`mem_size_mib\` is ${w.mem_size_mib}, but must be between 1 and ${MAX_MEM_MIB}.`);
  }
  const u: MachineConfigUpdate = {};
  if (w.vcpu_count != null) u.vcpuCount = w.vcpu_count;
  if (w.mem_size_mib != null) u.memSizeMib = w.mem_size_mib;
  if (w.smt != null) u.smt = w.smt;
  if (w.track_dirty_pages != null) u.trackDirtyPages = w.track_dirty_pages;
  if (w.huge_pages != null) u.hugePages = w.huge_pages;
  return u;
}

/** Whether the body carries cpu_template (deprecated by Firecracker: the answer says so). */
export function hasCpuTemplate(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as Record<string, unknown>).cpu_template != null;
}

/** PUT /machine-config and the config file: vcpu_count and mem_size_mib required, the rest defaulted. */
export function parseMachineConfig(value: unknown, where = WHERE): MachineConfig {
  const w = decode(wire.MachineConfiguration, value, where);
  return applyMachineConfigUpdate({ ...DEFAULT_MACHINE_CONFIG }, fromWire(w, where), where);
}

/** PATCH /machine-config: any subset of the fields, at least one. */
export function parseMachineConfigUpdate(value: unknown, where = WHERE): MachineConfigUpdate {
  const w = decode(partial(wire.MachineConfiguration), value, where);
  if (Object.keys(w).length === 0) throw new ConfigError('Empty PATCH request.');
  return fromWire(w, where);
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
  if (c.memSizeMib === 0 || (c.hugePages === '2M' && c.memSizeMib % 2 !== 0)) {
    const pages = c.hugePages === '2M' ? '2 MiB huge pages' : '4 KiB pages';
    throw new ConfigError(`${where}: mem_size_mib is ${c.memSizeMib} with ${pages}. ${MEMORY_SIZE_PHRASE}`);
  }
}

export function machineConfigToJson(c: MachineConfig): wire.MachineConfiguration {
  return {
    vcpu_count: c.vcpuCount,
    mem_size_mib: c.memSizeMib,
    smt: c.smt,
    track_dirty_pages: c.trackDirtyPages,
    huge_pages: c.hugePages,
  };
}
