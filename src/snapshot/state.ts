/**
 * What a snapshot file holds (format version 1): the configuration the VM was built from, the
 * memory layout, KVM's VM and vCPU state, and the devices' state, all plain data.
 */
import type { I8042State } from '../devices/legacy/i8042';
import type { SerialState } from '../devices/legacy/serial';
import type { MemoryRegionLayout } from './memory-file';
import type { SavedVirtioDevice } from '../vmm/device-manager';
import { SnapshotFileError } from './file-format';
import type { VcpuState } from './vcpu-state';
import type { VmState } from './vm-state';
import type { VmGenIdLocation } from './generation-id';

export interface SnapshotState {
  /** The Sparkler version that wrote it. */
  vmmVersion: string;
  /** ISO time of creation. */
  createdAt: string;
  snapshotType: 'Full' | 'Diff';
  /** GET /vm/config's body at the time (Firecracker's wire format). */
  vmConfig: unknown;
  memory: { regions: MemoryRegionLayout[]; pageSize: number };
  vm: VmState;
  vcpus: VcpuState[];
  /** The guest's VM generation ID (ACPI VGEN): absent in snapshots of VMs booted without one. */
  vmGenId?: VmGenIdLocation;
  devices: {
    serial: SerialState;
    i8042: I8042State;
    /** The virtio devices in slot order: transport, queues, and the device's own state. */
    virtio: SavedVirtioDevice[];
  };
}

const has = (o: unknown, key: string): boolean => typeof o === 'object' && o !== null && key in o;

/** A decoded file whose checksum matched can still come from a build that wrote other fields. */
export function checkSnapshotState(state: unknown, name: string): SnapshotState {
  const missing = ['vmmVersion', 'vmConfig', 'memory', 'vm', 'vcpus', 'devices'].filter((k) => !has(state, k));
  const s = state as SnapshotState;
  if (missing.length === 0) {
    if (!Array.isArray(s.memory.regions) || !Array.isArray(s.vcpus) || s.vcpus.length === 0) missing.push('memory.regions or vcpus');
    else if (!Buffer.isBuffer(s.vm.pit2) || s.vcpus.some((v) => !Buffer.isBuffer(v.regs) || !Buffer.isBuffer(v.lapic))) missing.push('vm or vcpu state');
  }
  if (missing.length > 0) {
    throw new SnapshotFileError('ESNAPSHOTCORRUPT', `${name} does not hold a complete microVM state (missing or malformed: ${missing.join(', ')}).`);
  }
  return s;
}
