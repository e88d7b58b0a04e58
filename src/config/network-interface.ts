/** PUT/PATCH /network-interfaces/{iface_id}, `network-interfaces` in the config file (virtio-net over a TAP). */
import { parseRateLimiter, RateLimiterConfig, rateLimiterToJson } from './rate-limiter';
import { ConfigError, optionalInteger, optionalString, parseObject, requiredId, requiredString } from './validate';

export interface NetworkInterfaceConfig {
  ifaceId: string;
  /** Name of the host TAP device (at most 15 characters, Linux's IFNAMSIZ - 1). */
  hostDevName: string;
  /** Guest MAC as six colon-separated hex bytes; absent lets the guest pick one. */
  guestMac?: string;
  /** Advertised with VIRTIO_NET_F_MTU when set. */
  mtu?: number;
  rxRateLimiter?: RateLimiterConfig;
  txRateLimiter?: RateLimiterConfig;
}

export interface NetworkInterfaceUpdate {
  ifaceId: string;
  rxRateLimiter?: RateLimiterConfig;
  txRateLimiter?: RateLimiterConfig;
}

const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
const IFNAMSIZ = 16;

export function parseNetworkInterface(value: unknown, where = 'network-interface'): NetworkInterfaceConfig {
  const obj = parseObject(value, ['iface_id', 'host_dev_name', 'guest_mac', 'mtu', 'rx_rate_limiter', 'tx_rate_limiter'], where);
  const c: NetworkInterfaceConfig = { ifaceId: requiredId(obj, 'iface_id', where), hostDevName: requiredString(obj, 'host_dev_name', where) };
  if (c.hostDevName.length === 0 || Buffer.byteLength(c.hostDevName) >= IFNAMSIZ || /[/\s]/.test(c.hostDevName)) {
    throw new ConfigError(`${where}: field \`host_dev_name\` must be a TAP device name of 1 to ${IFNAMSIZ - 1} characters without '/' or spaces.`);
  }
  const mac = optionalString(obj, 'guest_mac', where);
  if (mac !== undefined) {
    if (!MAC.test(mac)) throw new ConfigError(`${where}: field \`guest_mac\` is "${mac}", but must be six hex bytes separated by ':' (e.g. 06:00:AC:10:00:02).`);
    c.guestMac = mac;
  }
  const mtu = optionalInteger(obj, 'mtu', where, 68, 65535);
  if (mtu !== undefined) c.mtu = mtu;
  const rx = parseRateLimiter(obj.rx_rate_limiter, `${where}.rx_rate_limiter`);
  const tx = parseRateLimiter(obj.tx_rate_limiter, `${where}.tx_rate_limiter`);
  if (rx) c.rxRateLimiter = rx;
  if (tx) c.txRateLimiter = tx;
  return c;
}

export function parseNetworkInterfaceUpdate(value: unknown, where = 'network-interface'): NetworkInterfaceUpdate {
  const obj = parseObject(value, ['iface_id', 'rx_rate_limiter', 'tx_rate_limiter'], where);
  const u: NetworkInterfaceUpdate = { ifaceId: requiredId(obj, 'iface_id', where) };
  const rx = parseRateLimiter(obj.rx_rate_limiter, `${where}.rx_rate_limiter`);
  const tx = parseRateLimiter(obj.tx_rate_limiter, `${where}.tx_rate_limiter`);
  if (rx) u.rxRateLimiter = rx;
  if (tx) u.txRateLimiter = tx;
  return u;
}

/** Adds or replaces (same iface_id) an interface; a TAP or MAC already used by another one is refused. */
export function insertNetworkInterface(list: readonly NetworkInterfaceConfig[], iface: NetworkInterfaceConfig): NetworkInterfaceConfig[] {
  const others = list.filter((i) => i.ifaceId !== iface.ifaceId);
  if (iface.guestMac && others.some((i) => i.guestMac?.toLowerCase() === iface.guestMac!.toLowerCase())) {
    throw new ConfigError(`The MAC address is already in use: ${iface.guestMac}.`);
  }
  if (others.some((i) => i.hostDevName === iface.hostDevName)) {
    throw new ConfigError(`The host device ${iface.hostDevName} is already used by another network interface.`);
  }
  const index = list.findIndex((i) => i.ifaceId === iface.ifaceId);
  return index === -1 ? [...list, iface] : list.map((i, n) => (n === index ? iface : i));
}

export function networkInterfaceToJson(c: NetworkInterfaceConfig): Record<string, unknown> {
  const json: Record<string, unknown> = { iface_id: c.ifaceId, host_dev_name: c.hostDevName, guest_mac: c.guestMac ?? null };
  if (c.mtu !== undefined) json.mtu = c.mtu;
  json.rx_rate_limiter = c.rxRateLimiter ? rateLimiterToJson(c.rxRateLimiter) : null;
  json.tx_rate_limiter = c.txRateLimiter ? rateLimiterToJson(c.txRateLimiter) : null;
  return json;
}
