/**
 * `block`: the sum of every drive's `block_<drive_id>` group, as Firecracker reports it beside the
 * per-drive groups (its metrics tests check `block` == the sum of the per-device counters; Kata's
 * fc_metrics.go reads the aggregate `block` object from each metrics line).
 */
import type { Metrics } from '../metrics/metrics';
import type { Vmm } from './vmm';

export function registerBlockMetrics(metrics: Metrics, vmm: Vmm): void {
  const drives = [...vmm.devices.metrics()].filter(([group]) => group.startsWith('block_')).map(([, g]) => g);
  const gauges = [...new Set(drives.flatMap((d) => d.gauges))];
  // Every field is present even with no drive (a zeroed drive's group seeds the sum).
  const zero = () => new (require('../devices/virtio/block/metrics') as typeof import('../devices/virtio/block/metrics')).BlockMetrics().toJson();
  metrics.register('block', () => sumGroups([zero(), ...drives.map((d) => d.counters())]), gauges);
}

/** Field-wise sum of number-valued groups (a field missing from one counts as 0). */
export function sumGroups(groups: readonly Record<string, number>[]): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const g of groups) for (const [k, v] of Object.entries(g)) if (typeof v === 'number') sum[k] = (sum[k] ?? 0) + v;
  return sum;
}
