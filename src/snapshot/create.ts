/**
 * PUT /snapshot/create: a paused VM's state into the snapshot file and its memory into the
 * memory file (Full: every page; Diff: the pages KVM logged as written since the last snapshot,
 * or without dirty tracking every resident page, as Firecracker's mincore Diff).
 */
import * as fs from 'node:fs';
import { KVM_CAP } from '../kvm/ioctl-numbers';
import { SparklerError } from '../errors';
import type { Vmm } from '../vmm/vmm';
import { encodeSnapshotFile } from './file-format';
import { dirtyBitmapFor, memoryFileLayout, PAGE_SIZE, residentBitmap, writeDiffMemoryFile, writeFullMemoryFile } from './memory-file';
import type { SnapshotState } from './state';
import { saveVcpuState, VcpuStateCaps } from './vcpu-state';
import { saveVmState } from './vm-state';
import { VMGENID_ADDRESS, VMGENID_GSI } from '../arch/x86_64/acpi/vmgenid';
import { lacksVmGenId } from './generation-id';

export class SnapshotCreateError extends SparklerError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'SnapshotCreateError';
  }
}

export interface CreateSnapshotOptions {
  snapshotPath: string;
  memFilePath: string;
  snapshotType: 'Full' | 'Diff';
  /** GET /vm/config's body, kept so that the restored VM reports the same configuration. */
  vmConfig: unknown;
  vmmVersion: string;
  /** Whether guest memory slots log dirty pages (machine-config track_dirty_pages). */
  trackDirtyPages: boolean;
}

export interface SnapshotTimings {
  stateMs: number;
  memoryMs: number;
  /** Pages written to the memory file. */
  pages: number;
}

export function vcpuStateCaps(vmm: Vmm): VcpuStateCaps {
  const kvm = vmm.parts.kvm;
  return {
    xsave: kvm.checkExtension(KVM_CAP.XSAVE) > 0,
    xcrs: kvm.checkExtension(KVM_CAP.XCRS) > 0,
    tscKhz: kvm.checkExtension(KVM_CAP.GET_TSC_KHZ) > 0,
  };
}

/** Reads every state the snapshot holds; the VM must be paused. */
export function captureState(vmm: Vmm, opts: Pick<CreateSnapshotOptions, 'snapshotType' | 'vmConfig' | 'vmmVersion'>): SnapshotState {
  const { kvm, vm, vcpus, memory, devices } = vmm.parts;
  vmm.drainQueuedWrites();
  const caps = vcpuStateCaps(vmm);
  const msrIndices = kvm.msrIndexList();
  return {
    vmmVersion: opts.vmmVersion,
    createdAt: new Date().toISOString(),
    snapshotType: opts.snapshotType,
    vmConfig: opts.vmConfig,
    memory: { regions: memoryFileLayout(memory), pageSize: PAGE_SIZE },
    vm: saveVmState(vm),
    vcpus: vcpus.map((v) => saveVcpuState(v, msrIndices, caps)),
    // Every VM this build boots has the VGEN device (the DSDT); one restored from an older snapshot keeps what it had.
    ...(lacksVmGenId.has(vmm) ? {} : { vmGenId: { address: VMGENID_ADDRESS, gsi: VMGENID_GSI } }),
    devices: { serial: devices.serial.saveState(), i8042: devices.i8042.saveState(), virtio: vmm.devices.saveStates() },
  };
}

/**
 * Waits (up to `timeoutMs`) until no device has a request running on the host (async block I/O
 * completes on the thread pool after the vCPUs are parked), so the saved queues are exact.
 */
export async function quiesceDevices(vmm: Vmm, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (vmm.devices.inFlight() > 0) {
    if (Date.now() > deadline) throw new SnapshotCreateError('EDEVICEBUSY', `The devices still have ${vmm.devices.inFlight()} requests in flight after ${timeoutMs} ms.`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/**
 * Dirty pages a failed snapshot took from KVM's log (reading the log clears it) and could not
 * write: they go into the next Diff, so a full disk costs a retry, never lost pages.
 */
const unsavedDirty = new WeakMap<Vmm, Uint8Array[]>();

function orInto(target: Uint8Array, extra: Uint8Array | undefined): Uint8Array {
  if (extra) for (let i = 0; i < target.length; i++) target[i] |= extra[i];
  return target;
}

export function createSnapshot(vmm: Vmm, opts: CreateSnapshotOptions): SnapshotTimings {
  if (vmm.state !== 'Paused') throw new SnapshotCreateError('ESNAPSHOTRUNNING', 'save/restore unavailable while running');
  const t0 = performance.now();
  const state = captureState(vmm, opts);
  const file = encodeSnapshotFile(state);
  const t1 = performance.now();
  const { memory, vm } = vmm.parts;
  let pages: number;
  // Read (and so cleared) before writing: pages the guest writes later belong to the next Diff.
  const bitmaps = opts.trackDirtyPages
    ? memory.regions.map((r, slot) => {
      const bitmap = dirtyBitmapFor(r.bytes.length);
      vm.getDirtyLog(slot, bitmap);
      return orInto(bitmap, unsavedDirty.get(vmm)?.[slot]);
    })
    : undefined;
  // Without the log a Diff holds every resident page: over the base it was restored from (or over
  // nothing, for a VM booted fresh) that is the memory now, pages only read included.
  const diffPages = opts.snapshotType === 'Diff' ? bitmaps ?? memory.regions.map((r) => residentBitmap(r.bytes)) : undefined;
  try {
    if (opts.snapshotType === 'Full') {
      writeFullMemoryFile(memory, opts.memFilePath);
      pages = memory.regions.reduce((n, r) => n + r.bytes.length / PAGE_SIZE, 0);
    } else {
      pages = writeDiffMemoryFile(memory, opts.memFilePath, (i) => diffPages![i]);
    }
    fs.writeFileSync(opts.snapshotPath, file, { mode: 0o600 });
  } catch (err) {
    if (bitmaps) unsavedDirty.set(vmm, bitmaps);
    throw new SnapshotCreateError('ESNAPSHOTWRITE', `Cannot write the snapshot: ${(err as Error).message}`, { cause: err });
  }
  // A Full snapshot is the new base, a Diff the new top layer: what was dirtied before is in it.
  unsavedDirty.delete(vmm);
  return { stateMs: t1 - t0, memoryMs: performance.now() - t1, pages };
}
