/**
 * The whole VM configuration: what `--config-file` describes and GET /vm/config returns, in
 * Firecracker's config-file format. Each section is parsed by its resource's own module.
 */
import { BootSourceConfig, bootSourceToJson, parseBootSource } from './boot-source';
import { DEFAULT_MACHINE_CONFIG, MachineConfig, machineConfigToJson, parseMachineConfig } from './machine-config';
import { ConfigError, expectObject } from './validate';

export interface VmConfig {
  bootSource?: BootSourceConfig;
  machineConfig: MachineConfig;
}

/** Sections of Firecracker's format whose devices Sparkler does not have yet. */
const NOT_YET_SUPPORTED = [
  'drives', 'cpu-config', 'balloon', 'network-interfaces', 'vsock', 'logger', 'metrics',
  'mmds-config', 'entropy', 'pmem', 'serial', 'memory-hotplug',
];
const KNOWN = ['boot-source', 'machine-config', ...NOT_YET_SUPPORTED];

function isEmpty(value: unknown): boolean {
  return value === null || value === undefined || (Array.isArray(value) && value.length === 0);
}

export function parseVmConfig(value: unknown): VmConfig {
  const obj = expectObject(value, 'config file');
  for (const key of Object.keys(obj)) {
    if (!KNOWN.includes(key)) throw new ConfigError(`config file: unknown section \`${key}\`.`);
  }
  if (obj['boot-source'] === undefined) throw new ConfigError('config file: missing section `boot-source`.');
  if (obj['machine-config'] === undefined) throw new ConfigError('config file: missing section `machine-config`.');
  const bootSource = parseBootSource(obj['boot-source']);
  const machineConfig = parseMachineConfig(obj['machine-config']);
  for (const key of NOT_YET_SUPPORTED) {
    if (!isEmpty(obj[key])) {
      throw new ConfigError(`config file: section \`${key}\` is not supported by this version of Sparkler yet.`);
    }
  }
  return { bootSource, machineConfig };
}

/** Parses the text of a config file: not JSON, or JSON that fails validation, is a ConfigError. */
export function parseVmConfigText(text: string, source: string): VmConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${source} is not valid JSON: ${(err as Error).message}.`);
  }
  return parseVmConfig(json);
}

export function vmConfigToJson(c: VmConfig): Record<string, unknown> {
  return {
    'boot-source': c.bootSource ? bootSourceToJson(c.bootSource) : null,
    'machine-config': machineConfigToJson(c.machineConfig ?? DEFAULT_MACHINE_CONFIG),
  };
}
