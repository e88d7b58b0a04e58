/**
 * virtio-net in the device manager: one device per `network-interfaces` entry, each on its own
 * TAP. Interfaces named in mmds-config get their own MMDS network stack over the VM's one store.
 * The device code loads only when a VM has an interface.
 */
import type { NetworkInterfaceConfig, NetworkInterfaceUpdate } from '../../../config/network-interface';
import type { Mmds } from '../../../mmds/mmds';
import type { NativeShim } from '../../../native';
import type { VirtioDeviceSpec } from '../device-spec';

const device = () => require('./device') as typeof import('./device');
const tap = () => require('./tap') as typeof import('./tap');
const netMetricsModule = () => require('./metrics') as typeof import('./metrics');
const nativeShim = (): NativeShim => (require('../../../native') as typeof import('../../../native')).native();

/** The VM's metadata service and the interfaces that reach it (mmds-config network_interfaces). */
export interface NetMmdsConfig {
  mmds: Mmds;
  interfaces: readonly string[];
}

/** One interface, with the VM's MMDS when this interface carries it. */
export interface NetInstance {
  iface: NetworkInterfaceConfig;
  mmds?: Mmds;
}

/** `06:00:AC:10:00:02` as six bytes (the config parser has checked the form). */
export function macBytes(mac: string): Uint8Array {
  return Uint8Array.from(mac.split(':').map((b) => parseInt(b, 16)));
}

/**
 * PUT /network-interfaces before boot: opens an existing TAP as the device will and closes it,
 * so a TAP that is busy or has the wrong flags is reported to the API caller, not at
 * InstanceStart. A name with no device yet is left alone: opening it would create a transient
 * TAP (about 30 ms of netdev registration) only to delete it; InstanceStart creates it for good.
 */
export function checkTap(hostDevName: string, shim: NativeShim = nativeShim(), exists = netdevExists): void {
  if (!exists(hostDevName)) return;
  tap().Tap.open(hostDevName, shim).close();
}

function netdevExists(name: string): boolean {
  return !name.includes('/') && !name.startsWith('.') && (require('node:fs') as typeof import('node:fs')).existsSync(`/sys/class/net/${name}`);
}

/**
 * The code-cache training run's interface: a TAP the VMM creates itself (non-persistent, gone
 * when it closes). Only where this process may create one (root or CAP_NET_ADMIN, a
 * /dev/net/tun): elsewhere no interface, so the training run still trains everything else.
 */
export function netTrainingSection(name = `sptrain${process.pid % 100000}`, shim: NativeShim | undefined = undefined): { section: string; value: unknown } | undefined {
  try {
    tap().Tap.open(name, shim ?? nativeShim()).close();
  } catch {
    return undefined;
  }
  return { section: 'network-interfaces', value: [{ iface_id: 'eth0', host_dev_name: name, guest_mac: '06:00:ac:10:00:02' }] };
}

export const netSpec: VirtioDeviceSpec<NetInstance> = {
  type: 'net',
  instances: (config) => (config.networkInterfaces ?? []).map((iface) => ({
    iface,
    mmds: config.mmds !== undefined && config.mmds.interfaces.includes(iface.ifaceId) ? config.mmds.mmds : undefined,
  })),
  trainingSection: () => netTrainingSection(),
  create({ iface, mmds }, ctx) {
    const backend = tap().Tap.open(iface.hostDevName, nativeShim());
    let net: import('./device').VirtioNet;
    try {
      net = new (device().VirtioNet)({
        ifaceId: iface.ifaceId, backend, guestMac: iface.guestMac !== undefined ? macBytes(iface.guestMac) : undefined, mtu: iface.mtu,
        rxRateLimiter: iface.rxRateLimiter, txRateLimiter: iface.txRateLimiter, mmds: mmds?.createNetworkStack(),
        fds: ctx.fds, clock: ctx.clock, timers: ctx.timers, log: ctx.log, host: ctx.host,
      });
    } catch (err) {
      backend.close();
      throw err;
    }
    return {
      id: iface.ifaceId,
      device: net,
      metricsGroup: `net_${iface.ifaceId}`,
      metrics: () => net.metrics.toJson(),
      gauges: netMetricsModule().NET_GAUGES,
      update: (u) => {
        const { rxRateLimiter, txRateLimiter } = u as NetworkInterfaceUpdate;
        net.update({ rxRateLimiter, txRateLimiter });
      },
      setPaused: (paused) => net.setPaused(paused),
      dispose: () => net.dispose(),
      save: () => ({ inFlight: 0, heldChains: net.heldChains(), state: net.saveState() }),
      restore: (state) => net.restoreState(state),
    };
  },
};
