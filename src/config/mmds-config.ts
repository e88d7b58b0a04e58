/** PUT /mmds/config, `mmds-config` in the config file: which interfaces reach the metadata service. */
import * as wire from '../api/wire/definitions';
import { decode } from './decode';
import { ConfigError, resourceIdProblem } from './validate';

export interface MmdsConfig {
  version: 'V1' | 'V2';
  networkInterfaces: string[];
  /** Link-local address the guest reaches MMDS at. */
  ipv4Address: string;
  /** Answer text/plain whatever the Accept header, as EC2 IMDS does. */
  imdsCompat: boolean;
}

export const DEFAULT_MMDS_ADDRESS = '169.254.169.254';

/** 169.254.0.0/16 without the first and last /24 (RFC 3927 reserves them). */
function isLinkLocalAddress(text: string): boolean {
  const m = /^169\.254\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m || m.slice(1).some((p) => p.length > 1 && p.startsWith('0'))) return false;
  const [c, d] = [Number(m[1]), Number(m[2])];
  return c >= 1 && c <= 254 && d <= 255;
}

export function parseMmdsConfig(value: unknown, where = 'mmds-config'): MmdsConfig {
  const w = decode(wire.MmdsConfig, value, where);
  w.network_interfaces.forEach((id, i) => {
    const problem = resourceIdProblem(id);
    if (problem) throw new ConfigError(`${where}.network_interfaces[${i}]: ${problem}`);
  });
  if (w.network_interfaces.length === 0) {
    // Firecracker's words (its clients match them).
    throw new ConfigError('The list of network interface IDs that allow forwarding MMDS requests is empty.', 'EMMDSCONFIG');
  }
  const ipv4Address = w.ipv4_address ?? DEFAULT_MMDS_ADDRESS;
  if (!isLinkLocalAddress(ipv4Address)) {
    throw new ConfigError(`${where}: field \`ipv4_address\` is "${ipv4Address}", but must be a link-local IPv4 address in 169.254.1.0 - 169.254.254.255.`);
  }
  return { version: w.version ?? 'V1', networkInterfaces: w.network_interfaces, ipv4Address, imdsCompat: w.imds_compat ?? false };
}

/** Every interface named must already exist, as Firecracker checks when the config is set. */
export function checkMmdsInterfaces(c: MmdsConfig, existing: readonly string[]): void {
  const missing = c.networkInterfaces.filter((id) => !existing.includes(id));
  if (missing.length > 0) {
    throw new ConfigError(`The list of network interface IDs provided contains at least one ID that does not correspond to any existing network interface: ${missing.map((m) => `\`${m}\``).join(', ')} do not exist; configure them before MMDS.`, 'EMMDSCONFIG');
  }
}

export function mmdsConfigToJson(c: MmdsConfig): wire.MmdsConfig {
  return { version: c.version, network_interfaces: c.networkInterfaces, ipv4_address: c.ipv4Address, imds_compat: c.imdsCompat };
}
