/**
 * The VMM controller: the one place API actions take effect, one at a time in arrival order
 * (the API server awaits each before starting the next). Before InstanceStart it edits the
 * resource store; InstanceStart builds and starts the microVM from it; afterwards only runtime
 * actions are accepted. Lifecycle rules use Firecracker's sentences.
 */
import * as fs from 'node:fs';
import type { ResponseBody, VmmAction, VmmResponse } from '../api/actions';
import { ApiError, NOT_SUPPORTED_AFTER_START, NOT_SUPPORTED_BEFORE_START } from '../api/errors';
import { BootSourceConfig, checkBootSourceFiles } from '../config/boot-source';
import { osErrorText } from '../config/os-error';
import { FeatureUnavailableError, requireFeature } from '../config/features';
import { machineConfigToJson } from '../config/machine-config';
import { VmResources } from '../config/resources';
import type { TokenBucketConfig } from '../config/rate-limiter';
import { ConfigError } from '../config/validate';
import { VmConfig, vmConfigToJson } from '../config/vm-config';
import { Logger, logger as defaultLogger } from '../logger/logger';
import { Metrics, metrics as defaultMetrics } from '../metrics/metrics';
import type { BuildOptions } from './builder';
import type { DriveConfig } from '../config/drive';
import type { NetworkInterfaceConfig } from '../config/network-interface';
import { MmdsService } from './mmds-service';
import { registerNetMetrics } from './net-metrics';
import { registerBlockMetrics } from './block-metrics';
import type { InstanceState, Vmm } from './vmm';
import type { SnapshotLoadParams } from '../config/snapshot';
import { BOOT_SPECIFIC_ACTIONS, createSnapshotAction, LOAD_AFTER_BOOT_CONFIG, loadSnapshotAction } from './snapshot-actions';
import { OperationLatencies } from '../metrics/operation-latencies';

// The device and builder modules load on first use: the API should be up before they are needed.
const blockSpec = () => require('../devices/virtio/block/spec') as typeof import('../devices/virtio/block/spec');
const netSpec = () => require('../devices/virtio/net/spec') as typeof import('../devices/virtio/net/spec');
const ratelimit = () => require('../ratelimit') as typeof import('../ratelimit');

export const APP_NAME = 'Sparkler';

export interface ControllerOptions {
  instanceId: string;
  vmmVersion: string;
  bootTimer?: boolean;
  logger?: Logger;
  metrics?: Metrics;
  /** Builds the VM; injected by tests. Defaults to builder.buildMicroVm. */
  build?: (opts: BuildOptions) => Vmm;
  /** Where console output goes without PUT /serial (default: stdout). */
  defaultSerialOutput?: (bytes: Buffer) => void;
  /** Called once the VM runs: the CLI waits for it to stop and exits. */
  onStarted?: (vmm: Vmm) => void;
  /** Checks that the kernel and initrd open when the boot source is set; injected by tests. */
  checkBootSource?: (c: BootSourceConfig) => void;
  /** --mmds-size-limit and --metadata's document. */
  mmdsSizeLimit?: number;
  metadata?: unknown;
  /** Opens and closes a TAP when an interface is PUT; injected by tests. */
  checkTap?: (hostDevName: string) => void;
}

/** Actions allowed only before InstanceStart, and only after it. */
const PRE_BOOT = new Set<VmmAction['kind']>([
  'ConfigureBootSource', 'UpdateMachineConfig', 'PutCpuConfig', 'ConfigureLogger', 'ConfigureMetrics', 'ConfigureSerial',
  'InsertBlockDevice', 'InsertNetworkDevice', 'InsertPmemDevice', 'SetVsockDevice', 'SetEntropyDevice', 'SetBalloonDevice',
  'SetMmdsConfiguration', 'SetMemoryHotplugDevice', 'LoadSnapshot', 'StartMicroVm',
]);
const POST_BOOT = new Set<VmmAction['kind']>([
  'SendCtrlAltDel', 'FlushMetrics', 'Pause', 'Resume', 'CreateSnapshot', 'UpdateBlockDevice', 'UpdateNetworkInterface',
  'UpdatePmemDevice', 'UpdateBalloon', 'UpdateBalloonStatistics', 'StartFreePageHinting', 'StopFreePageHinting',
  'GetFreePageHintingStatus', 'GetBalloonStats', 'UpdateMemoryHotplugSize', 'GetMemoryHotplugStatus',
]);

const EMPTY: VmmResponse = { status: 204 };
const ok = (body: ResponseBody): VmmResponse => ({ status: 200, body });

export class VmmController {
  readonly resources = new VmResources();
  private vmm?: Vmm;
  private mmdsService?: MmdsService;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  /** A boot-specific resource was configured: a snapshot can no longer be loaded. */
  private bootConfigured = false;
  private readonly latencies = new OperationLatencies();

  constructor(private readonly opts: ControllerOptions) {
    this.logger = opts.logger ?? defaultLogger;
    this.metrics = opts.metrics ?? defaultMetrics;
    this.latencies.register(this.metrics);
  }

  /** The metadata service, made on first use (with --metadata's document, if any). */
  private get mmds(): MmdsService {
    this.mmdsService ??= new MmdsService({ instanceId: this.opts.instanceId, sizeLimit: this.opts.mmdsSizeLimit, initial: this.opts.metadata as never });
    return this.mmdsService;
  }

  get state(): InstanceState {
    return this.vmm ? this.vmm.state : 'Not started';
  }

  get runningVmm(): Vmm | undefined {
    return this.vmm;
  }

  /** Loads the builder and device modules ahead of InstanceStart (the CLI calls it once the API is up). */
  preload(): void {
    require('./builder');
    blockSpec();
    ratelimit();
  }

  /** --config-file: the same checks as the API, section by section. */
  configure(config: VmConfig): void {
    if (config.bootSource) (this.opts.checkBootSource ?? checkBootSourceFiles)(config.bootSource);
    try {
      config.drives.forEach((d) => this.checkDrive(d));
    } catch (err) {
      throw err instanceof ConfigError ? new ConfigError(`config file section \`drives\`: ${err.message}`) : err;
    }
    this.resources.applyVmConfig(config);
    if (config.logger) this.logger.update(config.logger);
    if (config.metrics && !this.metrics.configured) this.metrics.init(config.metrics.metricsPath);
  }

  async handle(action: VmmAction): Promise<VmmResponse> {
    if (this.vmm && PRE_BOOT.has(action.kind)) throw new ApiError(400, NOT_SUPPORTED_AFTER_START);
    if (!this.vmm && POST_BOOT.has(action.kind)) throw new ApiError(400, NOT_SUPPORTED_BEFORE_START);
    const r = this.resources;
    if (BOOT_SPECIFIC_ACTIONS.has(action.kind)) this.bootConfigured = true;
    switch (action.kind) {
      case 'GetInstanceInfo':
        return ok({ id: this.opts.instanceId, state: this.state, vmm_version: this.opts.vmmVersion, app_name: APP_NAME });
      case 'GetVmmVersion':
        return ok({ firecracker_version: this.opts.vmmVersion });
      case 'GetFullVmConfig':
        return ok(vmConfigToJson(r.config));
      case 'GetMachineConfig':
        return ok(machineConfigToJson(r.config.machineConfig));
      case 'ConfigureBootSource':
        (this.opts.checkBootSource ?? checkBootSourceFiles)(action.config);
        r.setBootSource(action.config);
        return EMPTY;
      case 'UpdateMachineConfig': r.updateMachineConfig(action.update, action.replace); return EMPTY;
      case 'PutCpuConfig': r.setCpuConfig(action.config); return EMPTY;
      case 'ConfigureSerial': r.setSerial(action.config); return EMPTY;
      case 'ConfigureLogger':
        this.logger.update(action.config);
        r.setLogger(action.config);
        return EMPTY;
      case 'ConfigureMetrics':
        this.metrics.init(action.config.metricsPath);
        r.setMetrics(action.config);
        return EMPTY;
      case 'InsertBlockDevice':
        this.checkDrive(action.config);
        r.insertDrive(action.config);
        return EMPTY;
      case 'InsertNetworkDevice':
        requireFeature('network-interfaces');
        this.checkTap(action.config);
        r.insertNetworkInterface(action.config);
        return EMPTY;
      case 'InsertPmemDevice': r.insertPmem(action.config); return EMPTY;
      case 'SetVsockDevice': r.setVsock(action.config); return EMPTY;
      case 'SetEntropyDevice': r.setEntropy(action.config); return EMPTY;
      case 'SetBalloonDevice': r.setBalloon(action.config); return EMPTY;
      case 'SetMmdsConfiguration': r.setMmdsConfig(action.config); return EMPTY;
      case 'SetMemoryHotplugDevice': r.setMemoryHotplug(action.config); return EMPTY;
      case 'StartMicroVm': this.start(); return EMPTY;
      case 'SendCtrlAltDel': this.vmm!.parts.devices.i8042.triggerCtrlAltDel(); return EMPTY;
      case 'FlushMetrics': this.metrics.flush(); return EMPTY;
      case 'Pause': await this.latencies.time('pause_vm', () => this.vmm!.pause()); return EMPTY;
      case 'Resume': await this.latencies.time('resume_vm', () => this.vmm!.resume()); return EMPTY;
      case 'UpdateBlockDevice':
        this.vmm!.devices.update('block', action.update.driveId, action.update);
        r.recordDriveUpdate(action.update);
        return EMPTY;
      case 'UpdateNetworkInterface':
        this.vmm!.devices.update('net', action.update.ifaceId, action.update);
        r.recordNetworkInterfaceUpdate(action.update);
        return EMPTY;
      case 'UpdatePmemDevice': requireFeature('pmem'); return EMPTY;
      case 'GetBalloonConfig': case 'GetBalloonStats': case 'UpdateBalloon': case 'UpdateBalloonStatistics':
      case 'StartFreePageHinting': case 'StopFreePageHinting': case 'GetFreePageHintingStatus': {
        requireFeature('balloon');
        const { findBalloon, handleBalloonAction } = require('./balloon-actions') as typeof import('./balloon-actions');
        return handleBalloonAction(action, r, this.vmm !== undefined, findBalloon(this.vmm));
      }
      case 'GetMemoryHotplugStatus': case 'UpdateMemoryHotplugSize':
        throw new FeatureUnavailableError('memory-hotplug');
      case 'GetMmds': return ok(this.mmds.get() as { [key: string]: unknown }); // PUT takes objects only
      case 'PutMmds': this.mmds.put(action.data); return EMPTY;
      case 'PatchMmds': this.mmds.patch(action.data); return EMPTY;
      case 'CreateSnapshot':
        await this.latencies.time(action.params.snapshotType === 'Diff' ? 'diff_create_snapshot' : 'full_create_snapshot',
          () => createSnapshotAction(this.vmm!, action.params, r.config, this.opts.vmmVersion, this.logger));
        return EMPTY;
      case 'LoadSnapshot': await this.latencies.time('load_snapshot', () => this.loadSnapshot(action.params)); return EMPTY;
    }
  }

  /** The interface's TAP must open now, as Firecracker creates the device at PUT (Firecracker's words). */
  private checkTap(n: NetworkInterfaceConfig): void {
    const others = this.resources.config.networkInterfaces.filter((i) => i.ifaceId !== n.ifaceId);
    if (others.some((i) => i.hostDevName === n.hostDevName)) {
      throw new ConfigError(`Could not create the network device: Open tap device failed: the TAP ${n.hostDevName} is already used by another network interface.`, 'ETAPBUSY');
    }
    try {
      (this.opts.checkTap ?? ((name: string) => netSpec().checkTap(name)))(n.hostDevName);
    } catch (err) {
      throw new ConfigError(`Could not create the network device: ${(err as Error).message}`, (err as { code?: string }).code ?? 'ETAP');
    }
  }

  private checkDrive(d: DriveConfig): void {
    requireFeature(d.socket !== undefined ? 'vhost-user-block' : 'drives');
    try {
      blockSpec().checkDriveFile(d);
    } catch (err) {
      // Firecracker's clients match the OS's words for the failure (`No such file or directory (os error 2)`).
      const cause = (err as Error).cause;
      const os = cause instanceof Error && (cause as NodeJS.ErrnoException).code ? ` (${osErrorText(cause)})` : '';
      throw new ConfigError(`drive \`${d.driveId}\`: ${(err as Error).message.replace(/\.$/, '')}${os}.`);
    }
  }

  private loadSnapshot(params: SnapshotLoadParams): void {
    if (this.bootConfigured) throw new ApiError(400, LOAD_AFTER_BOOT_CONFIG);
    const c = this.resources.config;
    let vmm: Vmm | undefined;
    const loaded = loadSnapshotAction(params, {
      serialOutput: serialSink(c.serial?.serialOutPath, c.serial?.rateLimiter, this.opts.defaultSerialOutput, this.metrics),
      onReset: () => vmm?.stop({ kind: 'reset' }),
    }, this.logger);
    vmm = loaded.vmm;
    this.vmm = vmm;
    this.resources.replaceWithSnapshotConfig(loaded.config);
    registerVmMetrics(this.metrics, vmm);
    this.opts.onStarted?.(vmm);
  }

  private start(): void {
    const c = this.resources.config;
    if (!c.bootSource) throw new ApiError(400, 'Cannot start the microVM without a boot source: PUT /boot-source first (kernel_image_path).');
    const build = this.opts.build ?? (require('./builder') as typeof import('./builder')).buildMicroVm;
    let vmm: Vmm | undefined;
    try {
      vmm = build({
        bootSource: c.bootSource,
        machineConfig: c.machineConfig,
        cpuConfig: c.cpuConfig,
        drives: c.drives,
        entropy: c.entropy,
        networkInterfaces: c.networkInterfaces,
        mmds: this.mmds.forBuild(c.mmdsConfig),
        vsock: c.vsock,
        balloon: c.balloon,
        serialOutput: serialSink(c.serial?.serialOutPath, c.serial?.rateLimiter, this.opts.defaultSerialOutput, this.metrics),
        onReset: () => vmm?.stop({ kind: 'reset' }),
        bootTimer: this.opts.bootTimer ? { log: (line) => this.logger.info(line) } : undefined,
      });
    } catch (err) {
      throw new ApiError(400, `Start microvm error: ${(err as Error).message}`, err);
    }
    this.vmm = vmm;
    registerVmMetrics(this.metrics, vmm);
    registerNetMetrics(this.metrics, vmm, this.mmds);
    vmm.start();
    this.opts.onStarted?.(vmm);
    this.metrics.flush();
    this.metrics.startPeriodicFlush();
  }
}

function registerVmMetrics(metrics: Metrics, vmm: Vmm): void {
  const serial = vmm.parts.devices.serial;
  metrics.register('vcpu', () => {
    const d = vmm.exitDirections;
    return { exit_io_in: d.ioIn, exit_io_out: d.ioOut, exit_mmio_read: d.mmioRead, exit_mmio_write: d.mmioWrite };
  });
  metrics.register('uart', () => ({
    write_count: serial.bytesOut, read_count: serial.bytesIn, missed_read_count: serial.missedReads, overrun_count: serial.overruns,
  }));
  for (const [group, { counters, gauges }] of vmm.devices.metrics()) metrics.register(group, counters, gauges);
  registerBlockMetrics(metrics, vmm);
}

/**
 * Console output: to `path` (opened once, appending, non-blocking so a full pipe drops output
 * rather than stalling the VMM) or the default sink; beyond the token bucket, bytes are dropped
 * and counted in uart.rate_limiter_dropped_bytes.
 */
function serialSink(path: string | undefined, bucketConfig: TokenBucketConfig | undefined,
  fallback: ((bytes: Buffer) => void) | undefined, metrics: Metrics): (bytes: Buffer) => void {
  let out = fallback ?? ((bytes: Buffer) => { try { fs.writeSync(1, bytes); } catch { /* stdout gone */ } });
  if (path !== undefined) {
    const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NONBLOCK, 0o644);
    out = (bytes) => { try { fs.writeSync(fd, bytes); } catch { /* a full pipe loses console output, not the VM */ } };
  }
  if (!bucketConfig || bucketConfig.size === 0 || bucketConfig.refillTimeMs === 0) return out;
  const { TokenBucket, monotonicClock } = ratelimit();
  const bucket = new TokenBucket(bucketConfig.size, bucketConfig.oneTimeBurst, bucketConfig.refillTimeMs, monotonicClock.nowNs());
  let dropped = 0;
  metrics.register('uart_rate_limiter', () => ({ rate_limiter_dropped_bytes: dropped }));
  return (bytes) => {
    const now = monotonicClock.nowNs();
    const allowed = Math.min(bytes.length, Math.max(0, bucket.budget(now) + bucket.oneTimeBurst));
    if (allowed > 0) bucket.reduce(allowed, now);
    dropped += bytes.length - allowed;
    if (allowed > 0) out(bytes.subarray(0, allowed));
  };
}
