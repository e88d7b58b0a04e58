import { ConfigError, expectObject, optionalBoolean, optionalEnum, rejectUnknownFields, requiredInteger } from './validate';

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

export function parseMachineConfig(value: unknown): MachineConfig {
  const obj = expectObject(value, WHERE);
  rejectUnknownFields(obj, FIELDS, WHERE);
  if (obj.cpu_template !== undefined && obj.cpu_template !== null && obj.cpu_template !== 'None') {
    throw new ConfigError(`${WHERE}: CPU templates are not supported yet; use \`"cpu_template": "None"\` or leave it out.`);
  }
  const config: MachineConfig = {
    vcpuCount: requiredInteger(obj, 'vcpu_count', WHERE, 1, MAX_VCPUS),
    memSizeMib: requiredInteger(obj, 'mem_size_mib', WHERE, 1, MAX_MEM_MIB),
    smt: optionalBoolean(obj, 'smt', WHERE) ?? false,
    trackDirtyPages: optionalBoolean(obj, 'track_dirty_pages', WHERE) ?? false,
    hugePages: optionalEnum(obj, 'huge_pages', WHERE, ['None', '2M'] as const) ?? 'None',
  };
  checkMachineConfig(config);
  return config;
}

/** Rules that hold across fields, as Firecracker's machine-config validation. */
export function checkMachineConfig(c: MachineConfig): void {
  if (c.smt && c.vcpuCount > 1 && c.vcpuCount % 2 !== 0) {
    throw new ConfigError(`${WHERE}: with smt enabled, vcpu_count must be 1 or an even number (it is ${c.vcpuCount}).`);
  }
  if (c.hugePages === '2M' && c.memSizeMib % 2 !== 0) {
    throw new ConfigError(`${WHERE}: with 2M huge pages, mem_size_mib must be a multiple of 2 (it is ${c.memSizeMib}).`);
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
