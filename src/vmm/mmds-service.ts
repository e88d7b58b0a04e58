/**
 * The VM's metadata service as the API sees it: one data store for the VM's life (GET/PUT/PATCH
 * /mmds work before and after boot), filled from --metadata at start, and handed to the network
 * interfaces named in mmds-config when the VM is built. Firecracker's status codes: a store over
 * --mmds-size-limit is 413 and leaves the store unchanged.
 */
import { ApiError } from '../api/errors';
import type { MmdsConfig } from '../config/mmds-config';
import type { NetMmdsConfig } from '../devices/virtio/net/spec';
import type { JsonValue } from '../mmds/json';
import type { Mmds } from '../mmds/mmds';

const mmdsLib = () => require('../mmds') as typeof import('../mmds');

export interface MmdsServiceOptions {
  instanceId: string;
  /** --mmds-size-limit (default: the library's, Firecracker's payload limit). */
  sizeLimit?: number;
  /** --metadata: the document the store starts with. */
  initial?: JsonValue;
}

export class MmdsService {
  private instance: Mmds | undefined;

  constructor(private readonly opts: MmdsServiceOptions) {
    if (opts.initial !== undefined) this.mmds.store.put(opts.initial);
  }

  /** Created on first use: a VM that never touches MMDS never loads its code. */
  get mmds(): Mmds {
    this.instance ??= mmdsLib().createMmds({ sizeLimit: this.opts.sizeLimit, instanceId: this.opts.instanceId });
    return this.instance;
  }

  get(): JsonValue {
    return this.mmds.store.valueForApi();
  }

  put(data: unknown): void {
    this.apply(() => this.mmds.store.put(data as JsonValue));
  }

  patch(data: unknown): void {
    this.apply(() => this.mmds.store.patch(data as JsonValue));
  }

  /** What the builder gives the network devices: the configured options and interfaces, or nothing. */
  forBuild(config: MmdsConfig | undefined): NetMmdsConfig | undefined {
    if (config === undefined) return undefined;
    Object.assign(this.mmds.options, { version: config.version, ipv4Address: config.ipv4Address, imdsCompat: config.imdsCompat });
    return { mmds: this.mmds, interfaces: config.networkInterfaces };
  }

  /** The `mmds` metrics group's counters (zeros until MMDS is used). */
  metrics(): Record<string, number> {
    return this.mmds.metrics.sample();
  }

  private apply(change: () => void): void {
    try {
      change();
    } catch (err) {
      if (err instanceof mmdsLib().MmdsLimitExceededError) throw new ApiError(413, err.message, err, err.code);
      throw err;
    }
  }
}
