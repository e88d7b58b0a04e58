/**
 * The route table: every path and method of Firecracker's API, each with the parser that turns
 * its body into a VmmAction and the metric name it is counted under. Paths are written as in the
 * OpenAPI document so the conformance test can compare them one to one.
 */
import { parseBalloon, parseBalloonStartCmd, parseBalloonStatsUpdate, parseBalloonUpdate } from '../config/balloon';
import { parseBootSource } from '../config/boot-source';
import { parseCpuConfig } from '../config/cpu-config';
import { parseDrive, parseDriveUpdate } from '../config/drive';
import { parseEntropy } from '../config/entropy';
import { parseInstanceAction } from '../config/actions';
import { parseLoggerConfig } from '../config/logger';
import { hasCpuTemplate, parseMachineConfig, parseMachineConfigUpdate } from '../config/machine-config';
import { parseMemoryHotplug, parseMemoryHotplugSizeUpdate } from '../config/memory-hotplug';
import { parseMetricsConfig } from '../config/metrics';
import { parseMmdsConfig } from '../config/mmds-config';
import { parseNetworkInterface, parseNetworkInterfaceUpdate } from '../config/network-interface';
import { parsePmem, parsePmemUpdate } from '../config/pmem';
import { parseSerialConfig } from '../config/serial';
import { hasDeprecatedLoadFields, parseSnapshotCreate, parseSnapshotLoad, parseVmState } from '../config/snapshot';
import { expectObject } from '../config/validate';
import { hasVsockId, parseVsock } from '../config/vsock';
import { HttpMethod } from '../metrics/api-metrics';
import type { VmmAction } from './actions';
import { badRequest } from './errors';
import * as wire from './wire/definitions';
import type { Schema } from './wire/schema';

/** The parsed JSON body (undefined when the request had none) and the path's `{id}`, if any. */
export interface RouteInput {
  body: unknown;
  id?: string;
}

export interface RouteHandler {
  /** Metric name (Firecracker's where it has one). */
  metric: string;
  /** false: the body must be absent (GET); true: required; 'optional'. */
  body: boolean | 'optional';
  /** The body's wire definition (the parser decodes with it; the OpenAPI document names it). */
  request?: Schema;
  /** The 200 answer's wire definition, for GETs. */
  response?: Schema;
  /** One line for the OpenAPI document. */
  summary: string;
  parse: (input: RouteInput) => VmmAction;
  /**
   * Firecracker's deprecation warning when the body uses a deprecated form: the answer then
   * carries `Deprecation: true` and the warning is logged.
   */
  deprecation?: (body: unknown) => string | undefined;
}

export type Route = { path: string } & Partial<Record<HttpMethod, RouteHandler>>;

const get = (metric: string, response: Schema, summary: string, action: VmmAction): RouteHandler =>
  ({ metric, body: false, response, summary, parse: () => action });
const put = (metric: string, request: Schema, summary: string, parse: (input: RouteInput) => VmmAction, deprecation?: (body: unknown) => string | undefined): RouteHandler =>
  ({ metric, body: true, request, summary, parse, deprecation });

/** The body's id field must name the same resource as the path. */
function sameId(pathId: string | undefined, bodyId: string): void {
  if (pathId !== bodyId) throw badRequest('The id from the path does not match the id from the body!');
}

const ACTIONS = { InstanceStart: 'StartMicroVm', SendCtrlAltDel: 'SendCtrlAltDel', FlushMetrics: 'FlushMetrics' } as const;

const cpuTemplateDeprecation = (method: string) => (body: unknown) =>
  (hasCpuTemplate(body) ? `${method} /machine-config: cpu_template field is deprecated.` : undefined);
const mmdsV1Deprecation = (body: unknown) => {
  const version = typeof body === 'object' && body !== null ? (body as { version?: unknown }).version : undefined;
  return version === undefined || version === null || version === 'V1' ? 'PUT /mmds/config: V1 is deprecated. Use V2 instead.' : undefined;
};

export const ROUTES: Route[] = [
  { path: '/', GET: get('instance_info', wire.InstanceInfo, 'Describes the instance: id, state, VMM version.', { kind: 'GetInstanceInfo' }) },
  { path: '/version', GET: get('vmm_version', wire.FirecrackerVersion, 'The VMM version.', { kind: 'GetVmmVersion' }) },
  { path: '/vm/config', GET: get('vm_config', wire.FullVmConfiguration, 'The whole configuration, in config-file form.', { kind: 'GetFullVmConfig' }) },
  { path: '/actions', PUT: put('actions', wire.InstanceActionInfo, 'InstanceStart, SendCtrlAltDel or FlushMetrics.', ({ body }) => ({ kind: ACTIONS[parseInstanceAction(body)] })) },
  { path: '/boot-source', PUT: put('boot_source', wire.BootSource, 'Sets the kernel, its command line and initrd (pre-boot); the files must open.', ({ body }) => ({ kind: 'ConfigureBootSource', config: parseBootSource(body) })) },
  {
    path: '/machine-config',
    GET: get('machine_cfg', wire.MachineConfiguration, 'The machine configuration.', { kind: 'GetMachineConfig' }),
    PUT: put('machine_cfg', wire.MachineConfiguration, 'Sets the machine configuration; absent optional fields take their defaults (pre-boot).',
      ({ body }) => ({ kind: 'UpdateMachineConfig', update: parseMachineConfig(body), replace: true }), cpuTemplateDeprecation('PUT')),
    PATCH: put('machine_cfg', wire.MachineConfiguration, 'Changes the fields given (pre-boot).',
      ({ body }) => ({ kind: 'UpdateMachineConfig', update: parseMachineConfigUpdate(body), replace: false }), cpuTemplateDeprecation('PATCH')),
  },
  { path: '/cpu-config', PUT: put('cpu_cfg', wire.CpuConfig, 'Sets a custom CPU template (pre-boot).', ({ body }) => ({ kind: 'PutCpuConfig', config: parseCpuConfig(body) })) },
  { path: '/logger', PUT: put('logger', wire.Logger, 'Configures the log (pre-boot).', ({ body }) => ({ kind: 'ConfigureLogger', config: parseLoggerConfig(body) })) },
  { path: '/metrics', PUT: put('metrics', wire.Metrics, 'Names the metrics file, once (pre-boot).', ({ body }) => ({ kind: 'ConfigureMetrics', config: parseMetricsConfig(body) })) },
  { path: '/serial', PUT: put('serial', wire.SerialDevice, 'Where the serial console output goes (pre-boot).', ({ body }) => ({ kind: 'ConfigureSerial', config: parseSerialConfig(body) })) },
  {
    path: '/vm',
    PATCH: put('vm_state', wire.Vm, 'Pauses or resumes the microVM.', ({ body }) => ({ kind: parseVmState(body) === 'Paused' ? 'Pause' : 'Resume' })),
  },
  {
    path: '/drives/{drive_id}',
    PUT: put('drive', wire.Drive, 'Adds or replaces a block device (pre-boot).', ({ body, id }) => {
      const config = parseDrive(body, 'drive');
      sameId(id, config.driveId);
      return { kind: 'InsertBlockDevice', config };
    }),
    PATCH: put('drive', wire.PartialDrive, 'Changes a block device\'s file or rate limiter (post-boot).', ({ body, id }) => {
      const update = parseDriveUpdate(body, 'drive');
      sameId(id, update.driveId);
      return { kind: 'UpdateBlockDevice', update };
    }),
  },
  {
    path: '/network-interfaces/{iface_id}',
    PUT: put('network', wire.NetworkInterface, 'Adds or replaces a network interface (pre-boot).', ({ body, id }) => {
      const config = parseNetworkInterface(body);
      sameId(id, config.ifaceId);
      return { kind: 'InsertNetworkDevice', config };
    }),
    PATCH: put('network', wire.PartialNetworkInterface, 'Changes a network interface\'s rate limiters (post-boot).', ({ body, id }) => {
      const update = parseNetworkInterfaceUpdate(body);
      sameId(id, update.ifaceId);
      return { kind: 'UpdateNetworkInterface', update };
    }),
  },
  {
    path: '/pmem/{id}',
    PUT: put('pmem', wire.Pmem, 'Adds or replaces a pmem device (pre-boot).', ({ body, id }) => {
      const config = parsePmem(body);
      sameId(id, config.id);
      return { kind: 'InsertPmemDevice', config };
    }),
    PATCH: put('pmem', wire.PartialPmem, 'Changes a pmem device\'s rate limiter (post-boot).', ({ body, id }) => {
      const update = parsePmemUpdate(body);
      sameId(id, update.id);
      return { kind: 'UpdatePmemDevice', update };
    }),
  },
  {
    path: '/vsock',
    PUT: put('vsock', wire.Vsock, 'Sets the vsock device (pre-boot).', ({ body }) => ({ kind: 'SetVsockDevice', config: parseVsock(body) }),
      (body) => (hasVsockId(body) ? 'PUT /vsock: vsock_id field is deprecated.' : undefined)),
  },
  { path: '/entropy', PUT: put('entropy', wire.EntropyDevice, 'Sets the entropy device (pre-boot).', ({ body }) => ({ kind: 'SetEntropyDevice', config: parseEntropy(body) })) },
  {
    path: '/balloon',
    GET: get('balloon', wire.Balloon, 'The balloon device configuration.', { kind: 'GetBalloonConfig' }),
    PUT: put('balloon', wire.Balloon, 'Sets the balloon device (pre-boot).', ({ body }) => ({ kind: 'SetBalloonDevice', config: parseBalloon(body) })),
    PATCH: put('balloon', wire.BalloonUpdate, 'Changes the balloon target.', ({ body }) => ({ kind: 'UpdateBalloon', amountMib: parseBalloonUpdate(body).amountMib })),
  },
  {
    path: '/balloon/statistics',
    GET: get('balloon_stats', wire.BalloonStats, 'The balloon statistics.', { kind: 'GetBalloonStats' }),
    PATCH: put('balloon_stats', wire.BalloonStatsUpdate, 'Changes the statistics polling interval.', ({ body }) => ({ kind: 'UpdateBalloonStatistics', ...parseBalloonStatsUpdate(body) })),
  },
  {
    path: '/balloon/hinting/start',
    PATCH: { metric: 'balloon_hinting_start', body: 'optional', request: wire.BalloonStartCmd, summary: 'Starts free page hinting.',
      parse: ({ body }) => ({ kind: 'StartFreePageHinting', ...parseBalloonStartCmd(body) }) },
  },
  { path: '/balloon/hinting/status', GET: get('balloon_hinting_status', wire.BalloonHintingStatus, 'The free page hinting status.', { kind: 'GetFreePageHintingStatus' }) },
  {
    path: '/balloon/hinting/stop',
    PATCH: { metric: 'balloon_hinting_stop', body: 'optional', summary: 'Stops free page hinting.', parse: ({ body }) => {
      if (body !== undefined) expectObject(body, 'balloon/hinting/stop');
      return { kind: 'StopFreePageHinting' };
    } },
  },
  {
    path: '/mmds',
    GET: get('mmds', wire.MmdsContents, 'The MMDS data store.', { kind: 'GetMmds' }),
    PUT: put('mmds', wire.MmdsContentsObject, 'Replaces the MMDS data store.', ({ body }) => ({ kind: 'PutMmds', data: expectObject(body, 'mmds') })),
    PATCH: put('mmds', wire.MmdsContentsObject, 'Merges into the MMDS data store (RFC 7396).', ({ body }) => ({ kind: 'PatchMmds', data: expectObject(body, 'mmds') })),
  },
  { path: '/mmds/config', PUT: put('mmds_config', wire.MmdsConfig, 'Configures MMDS (pre-boot).', ({ body }) => ({ kind: 'SetMmdsConfiguration', config: parseMmdsConfig(body) }), mmdsV1Deprecation) },
  {
    path: '/hotplug/memory',
    GET: get('hotplug_memory', wire.MemoryHotplugStatus, 'The hotplugged memory status.', { kind: 'GetMemoryHotplugStatus' }),
    PUT: put('hotplug_memory', wire.MemoryHotplugConfig, 'Sets the memory hotplug device (pre-boot).', ({ body }) => ({ kind: 'SetMemoryHotplugDevice', config: parseMemoryHotplug(body) })),
    PATCH: put('hotplug_memory', wire.MemoryHotplugSizeUpdate, 'Requests a hotplugged memory size.', ({ body }) => ({ kind: 'UpdateMemoryHotplugSize', ...parseMemoryHotplugSizeUpdate(body) })),
  },
  { path: '/snapshot/create', PUT: put('snapshot_create', wire.SnapshotCreateParams, 'Creates a snapshot of the paused microVM.', ({ body }) => ({ kind: 'CreateSnapshot', params: parseSnapshotCreate(body) })) },
  {
    path: '/snapshot/load',
    PUT: put('snapshot_load', wire.SnapshotLoadParams, 'Loads a snapshot (pre-boot).', ({ body }) => ({ kind: 'LoadSnapshot', params: parseSnapshotLoad(body) }),
      (body) => (hasDeprecatedLoadFields(body) ? 'PUT /snapshot/load: mem_file_path and enable_diff_snapshots fields are deprecated.' : undefined)),
  },
];
