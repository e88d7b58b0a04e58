/**
 * virtio-vsock in the device manager: one device when the VM has a `vsock` section. It listens
 * on uds_path from creation (host programs may connect before the guest's driver is up).
 */
import * as fs from 'node:fs';
import type { VsockConfig } from '../../../config/vsock';
import { SparklerError } from '../../../errors';
import type { VirtioDeviceSpec } from '../device-spec';
import type { VsockSavedState } from './device';

const device = () => require('./device') as typeof import('./device');
const hostNet = () => require('./host-net') as typeof import('./host-net');

export class VsockConfigError extends SparklerError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'VsockConfigError';
  }
}

export const vsockSpec: VirtioDeviceSpec<VsockConfig> = {
  type: 'vsock',
  instances: (config) => (config.vsock !== undefined ? [config.vsock] : []),
  create(config, ctx) {
    // A stale socket file would make the bind fail later, out of the API caller's sight.
    if (fs.existsSync(config.udsPath)) {
      throw new VsockConfigError('EVSOCKPATH', `The vsock Unix socket path ${config.udsPath} already exists (Address in use); remove it or choose another uds_path.`);
    }
    const vsock = new (device().VirtioVsock)({
      guestCid: config.guestCid, udsPath: config.udsPath, net: hostNet().nodeHostNet(),
      log: ctx.log, host: ctx.host, timers: ctx.timers,
    });
    vsock.listen();
    return {
      id: config.vsockId ?? 'vsock',
      device: vsock,
      metricsGroup: 'vsock',
      metrics: () => vsock.metrics.toJson(),
      prepareSave: () => vsock.sendTransportReset(),
      save: () => ({ inFlight: 0, state: vsock.saveState() }),
      restore: (state) => vsock.restoreState(state as VsockSavedState),
      dispose: () => {
        vsock.dispose();
        try { fs.unlinkSync(config.udsPath); } catch { /* already gone */ }
      },
    };
  },
  trainingSection: (dir) => ({ section: 'vsock', value: { guest_cid: 3, uds_path: `${dir}/vsock.sock` } }),
};
