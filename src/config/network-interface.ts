/** PUT/PATCH /network-interfaces/{iface_id}, `network-interfaces` in the config file (virtio-net over a TAP). */
import * as wire from '../api/wire/definitions';
import { decode } from './decode';
import { RateLimiterConfig, rateLimiterFromWire, rateLimiterToJson } from './rate-limiter';
import { checkResourceId, ConfigError } from './validate';

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
  const w = decode(wire.NetworkInterface, value, where);
  const c: NetworkInterfaceConfig = { ifaceId: checkResourceId(w.iface_id, 'iface_id', where), hostDevName: w.host_dev_name };
  if (c.hostDevName.length === 0 || Buffer.byteLength(c.hostDevName) >= IFNAMSIZ || /[/\s]/.test(c.hostDevName)) {
    throw new ConfigError(`${where}: field \`host_dev_name\` must be a TAP device name of 1 to ${IFNAMSIZ - 1} characters without '/' or spaces.`);
  }
  if (w.guest_mac != null) {
    if (!MAC.test(w.guest_mac)) throw new ConfigError(`${where}: field \`guest_mac\` is "${w.guest_mac}", but must be six hex bytes separated by ':' (e.g. 06:00:AC:10:00:02).`);
    c.guestMac = w.guest_mac;
  }
  if (w.mtu != null) c.mtu = w.mtu;
  const rx = rateLimiterFromWire(w.rx_rate_limiter);
  const tx = rateLimiterFromWire(w.tx_rate_limiter);
  if (rx) c.rxRateLimiter = rx;
  if (tx) c.txRateLimiter = tx;
  return c;
}

export function parseNetworkInterfaceUpdate(value: unknown, where = 'network-interface'): NetworkInterfaceUpdate {
  const w = decode(wire.PartialNetworkInterface, value, where);
  const u: NetworkInterfaceUpdate = { ifaceId: checkResourceId(w.iface_id, 'iface_id', where) };
  const rx = rateLimiterFromWire(w.rx_rate_limiter);
  const tx = rateLimiterFromWire(w.tx_rate_limiter);
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

export function networkInterfaceToJson(c: NetworkInterfaceConfig): wire.NetworkInterface {
  return {
    iface_id: c.ifaceId,
    host_dev_name: c.hostDevName,
    guest_mac: c.guestMac ?? null,
    mtu: c.mtu ?? null,
    rx_rate_limiter: c.rxRateLimiter ? rateLimiterToJson(c.rxRateLimiter) : null,
    tx_rate_limiter: c.txRateLimiter ? rateLimiterToJson(c.txRateLimiter) : null,
  };
}
