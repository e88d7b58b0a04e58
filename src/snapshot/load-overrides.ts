/**
 * PUT /snapshot/load's network_overrides and vsock_override: applied to the snapshot's saved
 * configuration before its devices are made again, so a clone can use another TAP device or
 * another vsock Unix socket than the VM it was saved from. An override naming a device the
 * snapshot does not have is refused (Firecracker's "Unknown Network Device" / "Unknown Vsock Device").
 */
import { parseNetworkInterface } from '../config/network-interface';
import type { SnapshotLoadParams } from '../config/snapshot';
import type { VmConfig } from '../config/vm-config';
import { SparklerError } from '../errors';

export type LoadOverrides = Partial<Pick<SnapshotLoadParams, 'networkOverrides' | 'vsockOverride'>>;

export class SnapshotOverrideError extends SparklerError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'SnapshotOverrideError';
  }
}

/** A copy of `config` with the overrides applied; `config` is left as it was. */
export function applyLoadOverrides(config: VmConfig, overrides: LoadOverrides): VmConfig {
  const out: VmConfig = { ...config, networkInterfaces: config.networkInterfaces.map((i) => ({ ...i })) };
  for (const [n, o] of (overrides.networkOverrides ?? []).entries()) {
    const iface = out.networkInterfaces.find((i) => i.ifaceId === o.ifaceId);
    if (iface === undefined) {
      const known = config.networkInterfaces.map((i) => `\`${i.ifaceId}\``).join(', ') || 'none';
      throw new SnapshotOverrideError('EUNKNOWNNETDEVICE', `Unknown Network Device: the snapshot has no network interface \`${o.ifaceId}\` (it has ${known}).`);
    }
    try {
      // The same check a PUT /network-interfaces applies to the name.
      parseNetworkInterface({ iface_id: o.ifaceId, host_dev_name: o.hostDevName }, `network_overrides[${n}]`);
    } catch (err) {
      throw new SnapshotOverrideError('EINVALIDOVERRIDE', (err as Error).message, { cause: err });
    }
    iface.hostDevName = o.hostDevName;
  }
  const taken = new Set<string>();
  for (const iface of out.networkInterfaces) {
    if (taken.has(iface.hostDevName)) {
      throw new SnapshotOverrideError('EINVALIDOVERRIDE', `The host device ${iface.hostDevName} would be used by two network interfaces after the overrides.`);
    }
    taken.add(iface.hostDevName);
  }
  if (overrides.vsockOverride !== undefined) {
    if (config.vsock === undefined) throw new SnapshotOverrideError('EUNKNOWNVSOCKDEVICE', 'Unknown Vsock Device: the snapshot has no vsock device to give the uds_path override to.');
    if (overrides.vsockOverride.udsPath.length === 0) throw new SnapshotOverrideError('EINVALIDOVERRIDE', 'vsock_override: field `uds_path` must not be empty.');
    out.vsock = { ...config.vsock, udsPath: overrides.vsockOverride.udsPath };
  }
  return out;
}
