/**
 * PUT /snapshot/create and PUT /snapshot/load as the controller applies them, with Firecracker's
 * rules and phrases: create only while paused; load only before any boot-specific configuration,
 * and it replaces the configuration with the snapshot's.
 */
import { ApiError } from '../api/errors';
import type { SnapshotCreateParams, SnapshotLoadParams } from '../config/snapshot';
import type { VmConfig } from '../config/vm-config';
import { vmConfigToJson } from '../config/vm-config';
import type { Logger } from '../logger/logger';
import type { LegacyDeviceOptions } from './legacy-devices';
import type { Vmm } from './vmm';

const snapshotCreate = () => require('../snapshot/create') as typeof import('../snapshot/create');
const snapshotRestore = () => require('../snapshot/restore') as typeof import('../snapshot/restore');

/** The actions that configure what a boot makes; after any of them a snapshot cannot be loaded. */
export const BOOT_SPECIFIC_ACTIONS: ReadonlySet<string> = new Set([
  'ConfigureBootSource', 'UpdateMachineConfig', 'InsertBlockDevice', 'InsertNetworkDevice', 'InsertPmemDevice',
  'SetVsockDevice', 'SetEntropyDevice', 'SetBalloonDevice', 'SetMmdsConfiguration', 'SetMemoryHotplugDevice',
]);
export const LOAD_AFTER_BOOT_CONFIG = 'Loading a microVM snapshot not allowed after configuring boot-specific resources.';

export async function createSnapshotAction(vmm: Vmm, params: SnapshotCreateParams, config: Readonly<VmConfig>, vmmVersion: string, logger: Logger): Promise<void> {
  if (vmm.state !== 'Paused') throw new ApiError(400, 'Create snapshot error: save/restore unavailable while running', undefined, 'ESNAPSHOTRUNNING');
  try {
    await snapshotCreate().quiesceDevices(vmm);
    const t = snapshotCreate().createSnapshot(vmm, {
      snapshotPath: params.snapshotPath, memFilePath: params.memFilePath, snapshotType: params.snapshotType,
      vmConfig: savedVmConfig(config), vmmVersion, trackDirtyPages: config.machineConfig.trackDirtyPages,
    });
    logger.info(`Snapshot (${params.snapshotType}) created: state ${t.stateMs.toFixed(2)} ms, memory ${t.memoryMs.toFixed(1)} ms (${t.pages} pages).`);
  } catch (err) {
    throw new ApiError(400, `Create snapshot error: ${(err as Error).message}`, err, (err as { code?: string }).code);
  }
}

/** GET /vm/config as a snapshot keeps it: the host-side sections (logger, metrics, serial) are the loading process's own. */
function savedVmConfig(config: Readonly<VmConfig>): unknown {
  const json = vmConfigToJson(config as VmConfig) as Record<string, unknown>;
  for (const section of ['logger', 'metrics', 'serial']) delete json[section];
  return json;
}

export interface LoadedSnapshot {
  vmm: Vmm;
  config: VmConfig;
  /** PUT /snapshot/load received -> vCPUs started (ms). */
  loadMs: number;
}

export function loadSnapshotAction(params: SnapshotLoadParams, legacy: LegacyDeviceOptions, logger: Logger): LoadedSnapshot {
  const t0 = performance.now();
  let restored: ReturnType<ReturnType<typeof snapshotRestore>['restoreMicroVm']>;
  try {
    restored = snapshotRestore().restoreMicroVm({
      ...legacy, snapshotPath: params.snapshotPath, memFilePath: params.memBackend.backendPath, memBackend: params.memBackend.backendType,
      trackDirtyPages: params.trackDirtyPages, clockRealtime: params.clockRealtime,
      overrides: { networkOverrides: params.networkOverrides, vsockOverride: params.vsockOverride },
    });
  } catch (err) {
    throw new ApiError(400, `Load snapshot error: Failed to restore from snapshot: ${(err as Error).message}`, err, (err as { code?: string }).code);
  }
  restored.vmm.start(!params.resumeVm);
  const loadMs = performance.now() - t0;
  const sinceStart = process.uptime() * 1000;
  logger.info(`Snapshot loaded in ${loadMs.toFixed(2)} ms (${params.resumeVm ? 'running' : 'paused'}; process start to vCPUs started ${sinceStart.toFixed(1)} ms).`);
  return { vmm: restored.vmm, config: restored.config, loadMs };
}
