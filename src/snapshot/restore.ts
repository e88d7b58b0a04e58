/**
 * PUT /snapshot/load: a microVM rebuilt from a snapshot file and its memory file, without loading
 * a kernel: createVmCore over the mapped memory file, KVM's VM state, the legacy devices and
 * their state, then the vCPUs with their saved state. The result is a Vmm whose vCPUs have not
 * started yet; start it (paused or not).
 */
import { Bus } from '../devices/bus';
import type { DeviceContext } from '../devices/virtio/device-context';
import { KVM_CAP } from '../kvm/ioctl-numbers';
import { Kvm } from '../kvm/kvm';
import { VcpuFd } from '../kvm/vcpu';
import { unmapGuestMemory } from '../memory/anonymous-memory';
import { parseVmConfig, VmConfig } from '../config/vm-config';
import { attachDevices, createVmCore } from '../vmm/builder';
import { attachLegacyDevices, LegacyDeviceOptions } from '../vmm/legacy-devices';
import { queueSerialTransmit } from '../vmm/queued-writes';
import { Teardown } from '../vmm/teardown';
import { Vmm } from '../vmm/vmm';
import { markStartup } from '../vmm/startup-marks';
import { SparklerError } from '../errors';
import { readSnapshotFile, SnapshotFileError } from './file-format';
import { mapMemoryFile } from './file-memory';
import { checkSnapshotState, SnapshotState } from './state';
import { restoreVcpuState } from './vcpu-state';
import { restoreVmState } from './vm-state';
import { createUffdGuestMemory } from './uffd';
import { applyLoadOverrides, LoadOverrides } from './load-overrides';
import { announceNewGeneration, lacksVmGenId } from './generation-id';
import type { GuestMemory } from '../memory/guest-memory';
import { native } from '../native';

export interface RestoreOptions extends LegacyDeviceOptions {
  snapshotPath: string;
  memFilePath: string;
  /** File (default): memFilePath is the memory file, mapped MAP_PRIVATE. Uffd: memFilePath is the page-fault handler's socket. */
  memBackend?: 'File' | 'Uffd';
  trackDirtyPages: boolean;
  clockRealtime: boolean;
  kvm?: Kvm;
  deviceContext?: DeviceContext;
  /** network_overrides and vsock_override, applied to the saved configuration first. */
  overrides?: LoadOverrides;
}

export interface RestoredVm {
  vmm: Vmm;
  /** The configuration the snapshot was made from (GET /vm/config after the load). */
  config: VmConfig;
  state: SnapshotState;
}

export class SnapshotLoadError extends SparklerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ESNAPSHOTLOAD', message, options);
    this.name = 'SnapshotLoadError';
  }
}

export function readSnapshot(path: string): { state: SnapshotState; config: VmConfig } {
  const name = `The snapshot file ${path}`;
  const state = checkSnapshotState(readSnapshotFile(path).state, name);
  let config: VmConfig;
  try {
    config = parseVmConfig(state.vmConfig);
  } catch (err) {
    throw new SnapshotFileError('ESNAPSHOTCORRUPT', `${name} holds a configuration this Sparkler does not accept: ${(err as Error).message}`, { cause: err });
  }
  return { state, config };
}

export function restoreMicroVm(opts: RestoreOptions): RestoredVm {
  markStartup('snapshot_read');
  const read = readSnapshot(opts.snapshotPath);
  const state = read.state;
  const config = applyLoadOverrides(read.config, opts.overrides ?? {});
  markStartup('build');
  const teardown = new Teardown();
  return teardown.guard(() => {
    const kvm = opts.kvm ?? Kvm.open();
    if (!opts.kvm) teardown.add('/dev/kvm', () => kvm.close());
    let memory: GuestMemory;
    if (opts.memBackend === 'Uffd') {
      const uffd = createUffdGuestMemory(state.memory.regions, opts.memFilePath);
      memory = uffd.memory;
      teardown.add('guest memory', () => unmapGuestMemory(uffd.memory));
      // Closed after KVM and the devices let go of guest memory (teardown runs last added first).
      teardown.add('the userfaultfd and its handler socket', () => { native().close(uffd.socket); native().close(uffd.uffd); });
    } else {
      const mapped = mapMemoryFile(opts.memFilePath, state.memory.regions);
      memory = mapped;
      teardown.add('guest memory', () => unmapGuestMemory(mapped));
    }
    const machineConfig = { ...config.machineConfig, trackDirtyPages: opts.trackDirtyPages };
    config.machineConfig = machineConfig;
    markStartup('memory_mapped');
    const core = createVmCore(kvm, machineConfig, teardown, memory);
    restoreVmState(core.vm, state.vm, { clockRealtime: opts.clockRealtime });
    markStartup('vm_state');
    const pio = new Bus();
    const mmio = new Bus();
    // Restored RAM is a file or userfaultfd mapping of 4 KiB pages, so the balloon gets no huge page size.
    const devices = attachDevices(core, mmio, {
      drives: config.drives, entropy: config.entropy, networkInterfaces: config.networkInterfaces, vsock: config.vsock, balloon: config.balloon,
    }, teardown, opts.deviceContext);
    devices.restoreStates(state.devices.virtio ?? []);
    const legacy = attachLegacyDevices(core.vm, pio, mmio, opts);
    teardown.add('the legacy devices', () => legacy.close());
    legacy.serial.restoreState(state.devices.serial);
    legacy.i8042.restoreState(state.devices.i8042);
    markStartup('devices');
    const setTscKhz = kvm.checkExtension(KVM_CAP.TSC_CONTROL) > 0;
    const mmapSize = kvm.vcpuMmapSize();
    const vcpus: VcpuFd[] = [];
    for (const saved of state.vcpus) {
      const vcpu = core.vm.createVcpu(saved.id, mmapSize);
      teardown.add(`vCPU ${saved.id}`, () => vcpu.close());
      restoreVcpuState(vcpu, saved, { setTscKhz });
      vcpus.push(vcpu);
    }
    devices.redeliverPendingInterrupts(); // now that the LAPICs exist and hold their saved state
    const queuedWrites = queueSerialTransmit(core.kvm, core.vm, vcpus[0], legacy.serial);
    if (state.vmGenId !== undefined) announceNewGeneration(core.vm, memory, state.vmGenId);
    markStartup('vcpus_configured');
    const vmm = new Vmm({ ...core, vcpus, pio, mmio, devices: legacy, virtio: devices, queuedWrites, teardown });
    if (state.vmGenId === undefined) lacksVmGenId.add(vmm);
    return { vmm, config, state };
  });
}
