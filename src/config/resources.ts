/**
 * The pre-boot resource store: one VmConfig, changed only through these setters, which hold the
 * rules that span resources (one root device, MMDS interfaces that exist, a balloon no larger
 * than RAM) and refuse features this build does not have. The API controller and the config
 * file both go through here, so a resource is accepted or refused the same way by both.
 */
import { BalloonConfig } from './balloon';
import { BootSourceConfig } from './boot-source';
import { CpuConfig } from './cpu-config';
import { DriveConfig, DriveUpdate, insertDrive } from './drive';
import { EntropyConfig } from './entropy';
import { requireFeature } from './features';
import { LoggerConfig } from './logger';
import { applyMachineConfigUpdate, DEFAULT_MACHINE_CONFIG, MachineConfig, MachineConfigUpdate } from './machine-config';
import { MemoryHotplugConfig } from './memory-hotplug';
import { MetricsConfig } from './metrics';
import { checkMmdsInterfaces, MmdsConfig } from './mmds-config';
import { insertNetworkInterface, NetworkInterfaceConfig, NetworkInterfaceUpdate } from './network-interface';
import type { RateLimiterConfig } from './rate-limiter';
import { insertPmem, PmemConfig } from './pmem';
import { SerialConfig } from './serial';
import { ConfigError } from './validate';
import { emptyVmConfig, VmConfig } from './vm-config';
import { VsockConfig } from './vsock';

export class VmResources {
  private current: VmConfig = emptyVmConfig();

  /** A snapshot of the configuration (callers must not mutate it). */
  get config(): Readonly<VmConfig> {
    return this.current;
  }

  /** After PUT /snapshot/load: the configuration the snapshot was made from (logger, metrics and serial stay). */
  replaceWithSnapshotConfig(c: VmConfig): void {
    const { logger, metrics, serial } = this.current;
    this.current = { ...c, logger, metrics, serial };
  }

  setBootSource(c: BootSourceConfig): void {
    this.current.bootSource = c;
  }

  /** PUT replaces every field (absent ones back to defaults); PATCH passes only the changed ones. */
  updateMachineConfig(update: MachineConfigUpdate, replace: boolean): void {
    const base: MachineConfig = replace ? DEFAULT_MACHINE_CONFIG : this.current.machineConfig;
    const next = applyMachineConfigUpdate(base, update);
    const balloon = this.current.balloon;
    if (balloon && balloon.amountMib > next.memSizeMib) {
      throw new ConfigError(`machine-config: mem_size_mib (${next.memSizeMib}) is smaller than the configured balloon target (${balloon.amountMib} MiB).`);
    }
    this.current.machineConfig = next;
  }

  setCpuConfig(c: CpuConfig): void {
    this.current.cpuConfig = c;
  }

  insertDrive(d: DriveConfig): void {
    requireFeature(d.socket !== undefined ? 'vhost-user-block' : 'drives');
    if (d.isRootDevice && this.current.pmem.some((p) => p.rootDevice)) {
      throw new ConfigError('A root device already exists: only one drive or pmem device can be the root device.');
    }
    this.current.drives = insertDrive(this.current.drives, d);
  }

  /**
   * After boot: a drive's PATCH went through; GET /vm/config shows the new file and limiter, as
   * Firecracker's does. A bucket in the update replaces the old one; `{size: 0}` removes it.
   */
  recordDriveUpdate(u: DriveUpdate): void {
    const drive = this.current.drives.find((d) => d.driveId === u.driveId);
    if (drive === undefined) return;
    if (u.pathOnHost !== undefined) drive.pathOnHost = u.pathOnHost;
    if (u.rateLimiter !== undefined) {
      const next = { ...drive.rateLimiter, ...u.rateLimiter };
      for (const key of ['bandwidth', 'ops'] as const) if (next[key]?.size === 0) delete next[key];
      drive.rateLimiter = next.bandwidth || next.ops ? next : undefined;
    }
  }

  /** After boot: a network interface's PATCH went through; GET /vm/config shows the new limiters. */
  recordNetworkInterfaceUpdate(u: NetworkInterfaceUpdate): void {
    const iface = this.current.networkInterfaces.find((n) => n.ifaceId === u.ifaceId);
    if (iface === undefined) return;
    iface.rxRateLimiter = mergeLimiter(iface.rxRateLimiter, u.rxRateLimiter);
    iface.txRateLimiter = mergeLimiter(iface.txRateLimiter, u.txRateLimiter);
  }

  insertPmem(p: PmemConfig): void {
    requireFeature('pmem');
    this.current.pmem = insertPmem(this.current.pmem, p, this.current.drives.some((d) => d.isRootDevice));
  }

  insertNetworkInterface(n: NetworkInterfaceConfig): void {
    requireFeature('network-interfaces');
    this.current.networkInterfaces = insertNetworkInterface(this.current.networkInterfaces, n);
  }

  setVsock(v: VsockConfig): void {
    requireFeature('vsock');
    this.current.vsock = v;
  }

  setBalloon(b: BalloonConfig): void {
    requireFeature('balloon');
    if (b.amountMib > this.current.machineConfig.memSizeMib) {
      throw new ConfigError(`balloon: amount_mib (${b.amountMib}) is larger than the guest memory (${this.current.machineConfig.memSizeMib} MiB).`);
    }
    this.current.balloon = b;
  }

  /** A balloon PATCH applied after boot: GET /vm/config shows the new values. */
  recordBalloonUpdate(u: Partial<Pick<BalloonConfig, 'amountMib' | 'statsPollingIntervalS'>>): void {
    if (this.current.balloon) this.current.balloon = { ...this.current.balloon, ...u };
  }

  setEntropy(e: EntropyConfig): void {
    requireFeature('entropy');
    this.current.entropy = e;
  }

  setMmdsConfig(m: MmdsConfig): void {
    requireFeature('mmds');
    checkMmdsInterfaces(m, this.current.networkInterfaces.map((n) => n.ifaceId));
    this.current.mmdsConfig = m;
  }

  setMemoryHotplug(m: MemoryHotplugConfig): void {
    requireFeature('memory-hotplug');
    this.current.memoryHotplug = m;
  }

  setLogger(l: LoggerConfig): void {
    this.current.logger = l;
  }

  setMetrics(m: MetricsConfig): void {
    this.current.metrics = m;
  }

  setSerial(s: SerialConfig): void {
    this.current.serial = s;
  }

  /**
   * Applies a parsed config file in Firecracker's order (the machine before the devices that
   * depend on its size, interfaces before the MMDS config that names them).
   */
  applyVmConfig(c: VmConfig): void {
    // Errors name the section, so a refused file says which part of it to change.
    const section = (name: string, apply: () => void) => {
      try {
        apply();
      } catch (err) {
        if (err instanceof ConfigError && !err.message.startsWith(name)) throw new ConfigError(`config file section \`${name}\`: ${err.message}`);
        throw err;
      }
    };
    section('logger', () => c.logger && this.setLogger(c.logger));
    section('metrics', () => c.metrics && this.setMetrics(c.metrics));
    section('boot-source', () => c.bootSource && this.setBootSource(c.bootSource));
    section('machine-config', () => this.updateMachineConfig(c.machineConfig, true));
    section('cpu-config', () => c.cpuConfig && this.setCpuConfig(c.cpuConfig));
    section('drives', () => c.drives.forEach((d) => this.insertDrive(d)));
    section('pmem', () => c.pmem.forEach((p) => this.insertPmem(p)));
    section('network-interfaces', () => c.networkInterfaces.forEach((n) => this.insertNetworkInterface(n)));
    section('vsock', () => c.vsock && this.setVsock(c.vsock));
    section('balloon', () => c.balloon && this.setBalloon(c.balloon));
    section('mmds-config', () => c.mmdsConfig && this.setMmdsConfig(c.mmdsConfig));
    section('entropy', () => c.entropy && this.setEntropy(c.entropy));
    section('memory-hotplug', () => c.memoryHotplug && this.setMemoryHotplug(c.memoryHotplug));
    section('serial', () => c.serial && this.setSerial(c.serial));
  }
}

/** A PATCHed limiter as GET /vm/config shows it: buckets in the update replace old ones, `{size: 0}` removes one. */
function mergeLimiter(current: RateLimiterConfig | undefined, update: RateLimiterConfig | undefined): RateLimiterConfig | undefined {
  if (update === undefined) return current;
  const next = { ...current, ...update };
  for (const key of ['bandwidth', 'ops'] as const) if (next[key]?.size === 0 || next[key]?.refillTimeMs === 0) delete next[key];
  return next.bandwidth || next.ops ? next : undefined;
}
