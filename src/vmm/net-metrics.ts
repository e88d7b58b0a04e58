/**
 * The metrics groups networking adds beside each interface's `net_<iface_id>`: `net`, the sum
 * over every interface (Firecracker's aggregate), and `mmds`, the metadata service's counters.
 */
import type { Metrics } from '../metrics/metrics';
import type { MmdsService } from './mmds-service';
import type { Vmm } from './vmm';

const netMetrics = () => require('../devices/virtio/net/metrics') as typeof import('../devices/virtio/net/metrics');

export function registerNetMetrics(metrics: Metrics, vmm: Vmm, mmds: MmdsService): void {
  const groups = [...vmm.devices.metrics()].filter(([group]) => group.startsWith('net_')).map(([, g]) => g.counters);
  metrics.register('net', () => netMetrics().sumNetMetrics(groups.map((sample) => sample())));
  metrics.register('mmds', () => mmds.metrics());
}
