/**
 * The whole VM configuration: what `--config-file` describes and GET /vm/config returns, in
 * Firecracker's config-file format. Each section is parsed by its resource's own module, with
 * the same validation as the API; the cross-resource rules live in resources.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BalloonConfig, balloonToJson, parseBalloon } from './balloon';
import { BootSourceConfig, bootSourceToJson, parseBootSource } from './boot-source';
import { CpuConfig, cpuConfigToJson, parseCpuConfig } from './cpu-config';
import { DriveConfig, driveToJson, parseDrives } from './drive';
import { EntropyConfig, entropyToJson, parseEntropy } from './entropy';
import { LoggerConfig, loggerConfigToJson, parseLoggerConfig } from './logger';
import { DEFAULT_MACHINE_CONFIG, MachineConfig, machineConfigToJson, parseMachineConfig } from './machine-config';
import { MemoryHotplugConfig, memoryHotplugToJson, parseMemoryHotplug } from './memory-hotplug';
import { MetricsConfig, metricsConfigToJson, parseMetricsConfig } from './metrics';
import { MmdsConfig, mmdsConfigToJson, parseMmdsConfig } from './mmds-config';
import { NetworkInterfaceConfig, networkInterfaceToJson, parseNetworkInterface } from './network-interface';
import { parsePmem, PmemConfig, pmemToJson } from './pmem';
import { parseSerialConfig, SerialConfig } from './serial';
import type * as wire from '../api/wire/definitions';
import { ConfigError, expectObject } from './validate';
import { parseVsock, VsockConfig, vsockToJson } from './vsock';

export interface VmConfig {
  bootSource?: BootSourceConfig;
  machineConfig: MachineConfig;
  cpuConfig?: CpuConfig;
  drives: DriveConfig[];
  networkInterfaces: NetworkInterfaceConfig[];
  pmem: PmemConfig[];
  vsock?: VsockConfig;
  balloon?: BalloonConfig;
  entropy?: EntropyConfig;
  mmdsConfig?: MmdsConfig;
  memoryHotplug?: MemoryHotplugConfig;
  logger?: LoggerConfig;
  metrics?: MetricsConfig;
  serial?: SerialConfig;
}

export const SECTIONS = [
  'boot-source', 'machine-config', 'cpu-config', 'drives', 'network-interfaces', 'pmem', 'vsock',
  'balloon', 'entropy', 'mmds-config', 'memory-hotplug', 'logger', 'metrics', 'serial',
] as const;

export function emptyVmConfig(): VmConfig {
  return { machineConfig: { ...DEFAULT_MACHINE_CONFIG }, drives: [], networkInterfaces: [], pmem: [] };
}

function absent(value: unknown): boolean {
  return value === null || value === undefined;
}

/** Errors that do not already say where they are (a feature refusal) get the section named. */
function named<T>(key: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof ConfigError && !err.message.startsWith(key)) throw new ConfigError(`config file section \`${key}\`: ${err.message}`);
    throw err;
  }
}

function optionalSection<T>(obj: Record<string, unknown>, key: string, parse: (v: unknown, where: string) => T): T | undefined {
  return absent(obj[key]) ? undefined : named(key, () => parse(obj[key], key));
}

function list<T>(obj: Record<string, unknown>, key: string, parse: (v: unknown, where: string) => T): T[] {
  const value = obj[key];
  if (absent(value)) return [];
  if (!Array.isArray(value)) throw new ConfigError(`${key}: expected a JSON array.`);
  return value.map((item, i) => parse(item, `${key}[${i}]`));
}

/**
 * `cpu-config` in a Firecracker config file is the path of a JSON file holding the template;
 * an inline object is accepted too. Relative paths are resolved against `baseDir`.
 */
function parseCpuConfigSection(value: unknown, baseDir: string): CpuConfig {
  if (typeof value !== 'string') return parseCpuConfig(value, 'cpu-config');
  const file = path.resolve(baseDir, value);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cpu-config: cannot read the CPU template ${file}: ${(err as Error).message}.`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`cpu-config: ${file} is not valid JSON: ${(err as Error).message}.`);
  }
  return parseCpuConfig(json, `cpu-config (${file})`);
}

/** Parses every section; device availability and cross-resource rules are checked by VmResources. */
export function parseVmConfig(value: unknown, baseDir = process.cwd()): VmConfig {
  const obj = expectObject(value, 'config file');
  for (const key of Object.keys(obj)) {
    if (!(SECTIONS as readonly string[]).includes(key)) {
      throw new ConfigError(`config file: unknown section \`${key}\`, expected one of ${SECTIONS.map((s) => `\`${s}\``).join(', ')}.`);
    }
  }
  if (absent(obj['boot-source'])) throw new ConfigError('config file: missing section `boot-source`.');
  const config: VmConfig = {
    bootSource: named('boot-source', () => parseBootSource(obj['boot-source'])),
    machineConfig: optionalSection(obj, 'machine-config', parseMachineConfig) ?? { ...DEFAULT_MACHINE_CONFIG },
    drives: parseDrives(obj.drives),
    networkInterfaces: list(obj, 'network-interfaces', parseNetworkInterface),
    pmem: list(obj, 'pmem', parsePmem),
  };
  if (!absent(obj['cpu-config'])) config.cpuConfig = parseCpuConfigSection(obj['cpu-config'], baseDir);
  const sections: Array<[keyof VmConfig, string, (v: unknown, where: string) => unknown]> = [
    ['vsock', 'vsock', parseVsock], ['balloon', 'balloon', parseBalloon], ['entropy', 'entropy', parseEntropy],
    ['mmdsConfig', 'mmds-config', parseMmdsConfig], ['memoryHotplug', 'memory-hotplug', parseMemoryHotplug],
    ['logger', 'logger', parseLoggerConfig], ['metrics', 'metrics', parseMetricsConfig], ['serial', 'serial', parseSerialConfig],
  ];
  for (const [field, key, parse] of sections) {
    const parsed = optionalSection(obj, key, parse);
    if (parsed !== undefined) (config as unknown as Record<string, unknown>)[field] = parsed;
  }
  return config;
}

/** Parses the text of a config file: not JSON, or JSON that fails validation, is a ConfigError. */
export function parseVmConfigText(text: string, source: string): VmConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${source} is not valid JSON: ${(err as Error).message}.`);
  }
  return parseVmConfig(json, path.dirname(path.resolve(source)));
}

/**
 * GET /vm/config: every section, null or [] when not configured, as Firecracker writes it. The
 * `serial` section of a config file is not echoed: Firecracker's answer has no such key, and
 * clients compare the whole object.
 */
export function vmConfigToJson(c: VmConfig): wire.FullVmConfiguration {
  const opt = <T, W>(v: T | undefined, f: (v: T) => W): W | null => (v === undefined ? null : f(v));
  return {
    'boot-source': opt(c.bootSource, bootSourceToJson),
    'machine-config': machineConfigToJson(c.machineConfig),
    'cpu-config': opt(c.cpuConfig, cpuConfigToJson),
    drives: c.drives.map(driveToJson),
    'network-interfaces': c.networkInterfaces.map(networkInterfaceToJson),
    pmem: c.pmem.map(pmemToJson),
    vsock: opt(c.vsock, vsockToJson),
    balloon: opt(c.balloon, balloonToJson),
    entropy: opt(c.entropy, entropyToJson),
    'mmds-config': opt(c.mmdsConfig, mmdsConfigToJson),
    'memory-hotplug': opt(c.memoryHotplug, memoryHotplugToJson),
    logger: opt(c.logger, loggerConfigToJson),
    metrics: opt(c.metrics, metricsConfigToJson),
  };
}
