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
import { parseMachineConfig, parseMachineConfigUpdate } from '../config/machine-config';
import { parseMemoryHotplug, parseMemoryHotplugSizeUpdate } from '../config/memory-hotplug';
import { parseMetricsConfig } from '../config/metrics';
import { parseMmdsConfig } from '../config/mmds-config';
import { parseNetworkInterface, parseNetworkInterfaceUpdate } from '../config/network-interface';
import { parsePmem, parsePmemUpdate } from '../config/pmem';
import { parseSerialConfig } from '../config/serial';
import { parseSnapshotCreate, parseSnapshotLoad, parseVmState } from '../config/snapshot';
import { expectObject } from '../config/validate';
import { parseVsock } from '../config/vsock';
import { HttpMethod } from '../metrics/api-metrics';
import type { VmmAction } from './actions';
import { badRequest } from './errors';

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
  parse: (input: RouteInput) => VmmAction;
}

export type Route = { path: string } & Partial<Record<HttpMethod, RouteHandler>>;

const get = (metric: string, action: VmmAction): RouteHandler => ({ metric, body: false, parse: () => action });
const put = (metric: string, parse: (input: RouteInput) => VmmAction): RouteHandler => ({ metric, body: true, parse });

/** The body's id field must name the same resource as the path. */
function sameId(pathId: string | undefined, bodyId: string): void {
  if (pathId !== bodyId) throw badRequest('The id from the path does not match the id from the body!');
}

const ACTIONS = { InstanceStart: 'StartMicroVm', SendCtrlAltDel: 'SendCtrlAltDel', FlushMetrics: 'FlushMetrics' } as const;

export const ROUTES: Route[] = [
  { path: '/', GET: get('instance_info', { kind: 'GetInstanceInfo' }) },
  { path: '/version', GET: get('vmm_version', { kind: 'GetVmmVersion' }) },
  { path: '/vm/config', GET: get('vm_config', { kind: 'GetFullVmConfig' }) },
  { path: '/actions', PUT: put('actions', ({ body }) => ({ kind: ACTIONS[parseInstanceAction(body)] })) },
  { path: '/boot-source', PUT: put('boot_source', ({ body }) => ({ kind: 'ConfigureBootSource', config: parseBootSource(body) })) },
  {
    path: '/machine-config',
    GET: get('machine_cfg', { kind: 'GetMachineConfig' }),
    PUT: put('machine_cfg', ({ body }) => ({ kind: 'UpdateMachineConfig', update: parseMachineConfig(body), replace: true })),
    PATCH: put('machine_cfg', ({ body }) => ({ kind: 'UpdateMachineConfig', update: parseMachineConfigUpdate(body), replace: false })),
  },
  { path: '/cpu-config', PUT: put('cpu_cfg', ({ body }) => ({ kind: 'PutCpuConfig', config: parseCpuConfig(body) })) },
  { path: '/logger', PUT: put('logger', ({ body }) => ({ kind: 'ConfigureLogger', config: parseLoggerConfig(body) })) },
  { path: '/metrics', PUT: put('metrics', ({ body }) => ({ kind: 'ConfigureMetrics', config: parseMetricsConfig(body) })) },
  { path: '/serial', PUT: put('serial', ({ body }) => ({ kind: 'ConfigureSerial', config: parseSerialConfig(body) })) },
  {
    path: '/vm',
    PATCH: put('vm_state', ({ body }) => ({ kind: parseVmState(body) === 'Paused' ? 'Pause' : 'Resume' })),
  },
  {
    path: '/drives/{drive_id}',
    PUT: put('drive', ({ body, id }) => {
      const config = parseDrive(body, 'drive');
      sameId(id, config.driveId);
      return { kind: 'InsertBlockDevice', config };
    }),
    PATCH: put('drive', ({ body, id }) => {
      const update = parseDriveUpdate(body, 'drive');
      sameId(id, update.driveId);
      return { kind: 'UpdateBlockDevice', update };
    }),
  },
  {
    path: '/network-interfaces/{iface_id}',
    PUT: put('network', ({ body, id }) => {
      const config = parseNetworkInterface(body);
      sameId(id, config.ifaceId);
      return { kind: 'InsertNetworkDevice', config };
    }),
    PATCH: put('network', ({ body, id }) => {
      const update = parseNetworkInterfaceUpdate(body);
      sameId(id, update.ifaceId);
      return { kind: 'UpdateNetworkInterface', update };
    }),
  },
  {
    path: '/pmem/{id}',
    PUT: put('pmem', ({ body, id }) => {
      const config = parsePmem(body);
      sameId(id, config.id);
      return { kind: 'InsertPmemDevice', config };
    }),
    PATCH: put('pmem', ({ body, id }) => {
      const update = parsePmemUpdate(body);
      sameId(id, update.id);
      return { kind: 'UpdatePmemDevice', update };
    }),
  },
  { path: '/vsock', PUT: put('vsock', ({ body }) => ({ kind: 'SetVsockDevice', config: parseVsock(body) })) },
  { path: '/entropy', PUT: put('entropy', ({ body }) => ({ kind: 'SetEntropyDevice', config: parseEntropy(body) })) },
  {
    path: '/balloon',
    GET: get('balloon', { kind: 'GetBalloonConfig' }),
    PUT: put('balloon', ({ body }) => ({ kind: 'SetBalloonDevice', config: parseBalloon(body) })),
    PATCH: put('balloon', ({ body }) => ({ kind: 'UpdateBalloon', amountMib: parseBalloonUpdate(body).amountMib })),
  },
  {
    path: '/balloon/statistics',
    GET: get('balloon_stats', { kind: 'GetBalloonStats' }),
    PATCH: put('balloon_stats', ({ body }) => ({ kind: 'UpdateBalloonStatistics', ...parseBalloonStatsUpdate(body) })),
  },
  {
    path: '/balloon/hinting/start',
    PATCH: { metric: 'balloon_hinting_start', body: 'optional', parse: ({ body }) => ({ kind: 'StartFreePageHinting', ...parseBalloonStartCmd(body) }) },
  },
  { path: '/balloon/hinting/status', GET: get('balloon_hinting_status', { kind: 'GetFreePageHintingStatus' }) },
  {
    path: '/balloon/hinting/stop',
    PATCH: { metric: 'balloon_hinting_stop', body: 'optional', parse: ({ body }) => {
      if (body !== undefined) expectObject(body, 'balloon/hinting/stop');
      return { kind: 'StopFreePageHinting' };
    } },
  },
  {
    path: '/mmds',
    GET: get('mmds', { kind: 'GetMmds' }),
    PUT: put('mmds', ({ body }) => ({ kind: 'PutMmds', data: expectObject(body, 'mmds') })),
    PATCH: put('mmds', ({ body }) => ({ kind: 'PatchMmds', data: expectObject(body, 'mmds') })),
  },
  { path: '/mmds/config', PUT: put('mmds_config', ({ body }) => ({ kind: 'SetMmdsConfiguration', config: parseMmdsConfig(body) })) },
  {
    path: '/hotplug/memory',
    GET: get('hotplug_memory', { kind: 'GetMemoryHotplugStatus' }),
    PUT: put('hotplug_memory', ({ body }) => ({ kind: 'SetMemoryHotplugDevice', config: parseMemoryHotplug(body) })),
    PATCH: put('hotplug_memory', ({ body }) => ({ kind: 'UpdateMemoryHotplugSize', ...parseMemoryHotplugSizeUpdate(body) })),
  },
  { path: '/snapshot/create', PUT: put('snapshot_create', ({ body }) => ({ kind: 'CreateSnapshot', params: parseSnapshotCreate(body) })) },
  { path: '/snapshot/load', PUT: put('snapshot_load', ({ body }) => ({ kind: 'LoadSnapshot', params: parseSnapshotLoad(body) })) },
];
