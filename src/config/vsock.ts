/** PUT /vsock, `vsock` in the config file: virtio-vsock proxied to Unix sockets on the host. */
import * as wire from '../api/wire/definitions';
import { decode } from './decode';
import { ConfigError } from './validate';

export interface VsockConfig {
  /** The guest's context ID; 0-2 are reserved (hypervisor, local, host). */
  guestCid: number;
  udsPath: string;
  /** Deprecated by Firecracker; kept so GET /vm/config returns what was given. */
  vsockId?: string;
}

export function parseVsock(value: unknown, where = 'vsock'): VsockConfig {
  const w = decode(wire.Vsock, value, where);
  const c: VsockConfig = { guestCid: w.guest_cid, udsPath: w.uds_path };
  if (c.udsPath.length === 0) throw new ConfigError(`${where}: field \`uds_path\` cannot be empty.`);
  if (w.vsock_id != null) c.vsockId = w.vsock_id;
  return c;
}

/** Whether the body uses the deprecated `vsock_id` (Firecracker answers with `Deprecation: true`). */
export function hasVsockId(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as Record<string, unknown>).vsock_id != null;
}

export function vsockToJson(c: VsockConfig): wire.Vsock {
  const json: wire.Vsock = { guest_cid: c.guestCid, uds_path: c.udsPath };
  if (c.vsockId !== undefined) json.vsock_id = c.vsockId;
  return json;
}
