/**
 * What an API request asks the VMM to do, once parsed and validated: a discriminated union the
 * controller switches on. Names follow Firecracker's VmmAction so the two can be compared.
 */
import type { BalloonConfig } from '../config/balloon';
import type { BootSourceConfig } from '../config/boot-source';
import type { CpuConfig } from '../config/cpu-config';
import type { DriveConfig, DriveUpdate } from '../config/drive';
import type { EntropyConfig } from '../config/entropy';
import type { LoggerConfig } from '../config/logger';
import type { MachineConfigUpdate } from '../config/machine-config';
import type { MemoryHotplugConfig } from '../config/memory-hotplug';
import type { MetricsConfig } from '../config/metrics';
import type { MmdsConfig } from '../config/mmds-config';
import type { NetworkInterfaceConfig, NetworkInterfaceUpdate } from '../config/network-interface';
import type { PmemConfig } from '../config/pmem';
import type { RateLimiterConfig } from '../config/rate-limiter';
import type { SerialConfig } from '../config/serial';
import type { SnapshotCreateParams, SnapshotLoadParams } from '../config/snapshot';
import type { VsockConfig } from '../config/vsock';
import type * as wire from './wire/definitions';

export type VmmAction =
  // Information, in any state.
  | { kind: 'GetInstanceInfo' }
  | { kind: 'GetVmmVersion' }
  | { kind: 'GetFullVmConfig' }
  | { kind: 'GetMachineConfig' }
  // Instance actions (PUT /actions).
  | { kind: 'StartMicroVm' }
  | { kind: 'SendCtrlAltDel' }
  | { kind: 'FlushMetrics' }
  // Pre-boot configuration.
  | { kind: 'ConfigureBootSource'; config: BootSourceConfig }
  /** PUT replaces (absent optional fields reset to defaults); PATCH changes only the fields given. */
  | { kind: 'UpdateMachineConfig'; update: MachineConfigUpdate; replace: boolean }
  | { kind: 'PutCpuConfig'; config: CpuConfig }
  | { kind: 'ConfigureLogger'; config: LoggerConfig }
  | { kind: 'ConfigureMetrics'; config: MetricsConfig }
  | { kind: 'ConfigureSerial'; config: SerialConfig }
  | { kind: 'InsertBlockDevice'; config: DriveConfig }
  | { kind: 'InsertNetworkDevice'; config: NetworkInterfaceConfig }
  | { kind: 'InsertPmemDevice'; config: PmemConfig }
  | { kind: 'SetVsockDevice'; config: VsockConfig }
  | { kind: 'SetEntropyDevice'; config: EntropyConfig }
  | { kind: 'SetBalloonDevice'; config: BalloonConfig }
  | { kind: 'SetMmdsConfiguration'; config: MmdsConfig }
  | { kind: 'SetMemoryHotplugDevice'; config: MemoryHotplugConfig }
  | { kind: 'LoadSnapshot'; params: SnapshotLoadParams }
  // Runtime.
  | { kind: 'Pause' }
  | { kind: 'Resume' }
  | { kind: 'CreateSnapshot'; params: SnapshotCreateParams }
  | { kind: 'UpdateBlockDevice'; update: DriveUpdate }
  | { kind: 'UpdateNetworkInterface'; update: NetworkInterfaceUpdate }
  | { kind: 'UpdatePmemDevice'; update: { id: string; rateLimiter?: RateLimiterConfig } }
  | { kind: 'UpdateBalloon'; amountMib: number }
  | { kind: 'UpdateBalloonStatistics'; statsPollingIntervalS: number }
  | { kind: 'StartFreePageHinting'; acknowledgeOnStop: boolean }
  | { kind: 'StopFreePageHinting' }
  | { kind: 'UpdateMemoryHotplugSize'; requestedSizeMib: number }
  // Either state.
  | { kind: 'GetBalloonConfig' }
  | { kind: 'GetBalloonStats' }
  | { kind: 'GetFreePageHintingStatus' }
  | { kind: 'GetMemoryHotplugStatus' }
  | { kind: 'PutMmds'; data: unknown }
  | { kind: 'PatchMmds'; data: unknown }
  | { kind: 'GetMmds' };

export type VmmActionKind = VmmAction['kind'];

/** What a GET answers with: one of the wire shapes (src/api/wire). */
export type ResponseBody =
  | wire.InstanceInfo | wire.FirecrackerVersion | wire.FullVmConfiguration | wire.MachineConfiguration | wire.Balloon
  | wire.BalloonStats | wire.BalloonHintingStatus | wire.MemoryHotplugStatus | { [key: string]: unknown };

/** The answer: 204 with no body, or 200 with a JSON body. Failures are thrown as ApiError. */
export type VmmResponse = { status: 204 } | { status: 200; body: ResponseBody };
