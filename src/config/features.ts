/**
 * Which optional features this build can deliver. The API and the config file parse and validate
 * every resource of Firecracker's format; a resource whose device (or feature) does not exist yet
 * is then refused here with one clear sentence, never silently accepted. A feature is switched on
 * by adding it to AVAILABLE in the same change that wires its device into the builder.
 */
import { ConfigError } from './validate';

export type Feature =
  | 'drives' | 'vhost-user-block' | 'network-interfaces' | 'vsock' | 'balloon' | 'entropy' | 'mmds'
  | 'pmem' | 'memory-hotplug' | 'snapshots' | 'huge-pages' | 'cpu-templates';

const DESCRIPTION: Record<Feature, string> = {
  drives: 'Block devices (virtio-block)',
  'vhost-user-block': 'vhost-user block devices',
  'network-interfaces': 'Network interfaces (virtio-net)',
  vsock: 'The vsock device (virtio-vsock)',
  balloon: 'The balloon device (virtio-balloon)',
  entropy: 'The entropy device (virtio-rng)',
  mmds: 'The microVM metadata service (MMDS)',
  pmem: 'Persistent memory devices (virtio-pmem)',
  'memory-hotplug': 'Memory hotplug (virtio-mem)',
  snapshots: 'Snapshots',
  'huge-pages': 'Guest memory backed by huge pages',
  'cpu-templates': 'Static CPU templates (machine-config cpu_template)',
};

const AVAILABLE = new Set<Feature>(['drives', 'entropy', 'network-interfaces', 'mmds', 'vsock', 'snapshots', 'balloon', 'huge-pages']);

export class FeatureUnavailableError extends ConfigError {
  constructor(readonly feature: Feature) {
    super(`${DESCRIPTION[feature]}: this feature is not available in this version of Sparkler yet.`, 'EFEATURE');
    this.name = 'FeatureUnavailableError';
  }
}

export function isAvailable(feature: Feature): boolean {
  return AVAILABLE.has(feature);
}

export function requireFeature(feature: Feature): void {
  if (!AVAILABLE.has(feature)) throw new FeatureUnavailableError(feature);
}

/** For tests and for the device engineers' own test builds: marks a feature as delivered. */
export function setFeatureAvailable(feature: Feature, available: boolean): void {
  if (available) AVAILABLE.add(feature); else AVAILABLE.delete(feature);
}
