/** PUT /vsock, `vsock` in the config file: virtio-vsock proxied to Unix sockets on the host. */
import { ConfigError, optionalString, parseObject, requiredInteger, requiredString } from './validate';

export interface VsockConfig {
  /** The guest's context ID; 0-2 are reserved (hypervisor, local, host). */
  guestCid: number;
  udsPath: string;
  /** Deprecated by Firecracker; kept so GET /vm/config returns what was given. */
  vsockId?: string;
}

export function parseVsock(value: unknown, where = 'vsock'): VsockConfig {
  const obj = parseObject(value, ['guest_cid', 'uds_path', 'vsock_id'], where);
  const c: VsockConfig = { guestCid: requiredInteger(obj, 'guest_cid', where, 3, 0xffff_ffff), udsPath: requiredString(obj, 'uds_path', where) };
  if (c.udsPath.length === 0) throw new ConfigError(`${where}: field \`uds_path\` cannot be empty.`);
  const id = optionalString(obj, 'vsock_id', where);
  if (id !== undefined) c.vsockId = id;
  return c;
}

export function vsockToJson(c: VsockConfig): Record<string, unknown> {
  const json: Record<string, unknown> = { guest_cid: c.guestCid, uds_path: c.udsPath };
  if (c.vsockId !== undefined) json.vsock_id = c.vsockId;
  return json;
}
