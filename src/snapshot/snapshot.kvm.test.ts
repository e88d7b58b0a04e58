/**
 * Snapshots on real KVM with a tiny guest that counts in memory: the state ioctls round-trip, and
 * a VM restored from a snapshot continues counting from where it was paused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildMicroVm } from '../vmm/builder';
import type { Vmm } from '../vmm/vmm';
import { DEFAULT_MACHINE_CONFIG } from '../config/machine-config';
import { emptyVmConfig, vmConfigToJson } from '../config/vm-config';
import { kvmUnavailableReason } from '../testing/kvm-available';
import { tinyKernel } from '../testing/tiny-guests';
import { tempDir } from '../testing/temp-dir';
import { guestAddress } from '../memory/guest-address';
import { createSnapshot, vcpuStateCaps } from './create';
import { restoreMicroVm } from './restore';
import { saveVcpuState, restoreVcpuState } from './vcpu-state';
import { saveVmState, restoreVmState } from './vm-state';
import { readGenerationId } from '../arch/x86_64/acpi/vmgenid';

const skip = kvmUnavailableReason();

/** Counts in the u64 at guest 0x200000: mov $0x200000,%ebx; 1: incq (%rbx); jmp 1b */
export const COUNTER_GUEST = Buffer.from('bb00002000' + '48ff03' + 'ebfb', 'hex');
export const COUNTER_ADDRESS = 0x200000;

const counter = (vmm: Vmm): bigint => vmm.parts.memory.view(guestAddress(COUNTER_ADDRESS), 8).readBigUInt64LE(0);

function bootCounter(dir: string, vcpuCount = 1, trackDirtyPages = false, withDevices = false): { vmm: Vmm; vmConfig: unknown } {
  const kernel = path.join(dir, 'counter.elf');
  fs.writeFileSync(kernel, tinyKernel(COUNTER_GUEST));
  const config = emptyVmConfig();
  config.bootSource = { kernelImagePath: kernel, bootArgs: 'console=ttyS0' };
  config.machineConfig = { ...DEFAULT_MACHINE_CONFIG, vcpuCount, memSizeMib: 64, trackDirtyPages };
  if (withDevices) {
    const disk = path.join(dir, 'disk.img');
    fs.writeFileSync(disk, Buffer.alloc(64 * 1024));
    config.drives = [{ driveId: 'root', pathOnHost: disk, isRootDevice: true, isReadOnly: false, cacheType: 'Unsafe', ioEngine: 'Sync' }];
    config.entropy = {};
  }
  const vmm = buildMicroVm({ bootSource: config.bootSource, machineConfig: config.machineConfig, drives: config.drives, entropy: config.entropy, serialOutput: () => {}, onReset: () => {} });
  vmm.start();
  return { vmm, vmConfig: vmConfigToJson(config) };
}

async function countsOn(vmm: Vmm, from: bigint): Promise<bigint> {
  const deadline = Date.now() + 5000;
  while (counter(vmm) <= from + 1000n) {
    if (Date.now() > deadline) throw new Error(`the counter stayed at ${counter(vmm)} (from ${from})`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return counter(vmm);
}

test('every vCPU and VM state ioctl round-trips on a paused guest', { skip }, async () => {
  const dir = tempDir('sparkler-snap-');
  const { vmm } = bootCounter(dir);
  try {
    await countsOn(vmm, 0n);
    await vmm.pause();
    const { vm, vcpus, kvm } = vmm.parts;
    const msrs = kvm.msrIndexList();
    assert.ok(msrs.length > 10, `KVM lists ${msrs.length} MSRs`);
    const caps = vcpuStateCaps(vmm);
    const before = saveVcpuState(vcpus[0], msrs, caps);
    const vmBefore = saveVmState(vm);
    restoreVcpuState(vcpus[0], before, { setTscKhz: false });
    restoreVmState(vm, vmBefore, { clockRealtime: false });
    const after = saveVcpuState(vcpus[0], msrs, caps);
    assert.deepEqual(after.regs, before.regs);
    assert.deepEqual(after.sregs, before.sregs);
    assert.deepEqual(after.lapic, before.lapic);
    assert.equal(after.mpState, before.mpState);
    assert.deepEqual(after.cpuid, before.cpuid);
    assert.equal(after.msrs.length, before.msrs.length);
    assert.deepEqual(saveVmState(vm).ioapic, vmBefore.ioapic);
    assert.ok(before.regs.readBigUInt64LE(16 * 8) >= 0x100_0000n, 'rip is in the guest code at 16 MiB');
  } finally {
    await vmm.close();
  }
});

test('a restored VM continues counting from where the snapshot stopped it', { skip }, async () => {
  const dir = tempDir('sparkler-snap-');
  const snapshotPath = path.join(dir, 'vm.snap');
  const memFilePath = path.join(dir, 'vm.mem');
  const { vmm, vmConfig } = bootCounter(dir, 2, false, true);
  let saved: bigint;
  try {
    await countsOn(vmm, 0n);
    await vmm.pause();
    saved = counter(vmm);
    createSnapshot(vmm, { snapshotPath, memFilePath, snapshotType: 'Full', vmConfig, vmmVersion: 'test', trackDirtyPages: false });
  } finally {
    await vmm.close();
  }
  assert.equal(fs.statSync(memFilePath).size, 64 * 1024 * 1024);
  const restored = restoreMicroVm({ snapshotPath, memFilePath, trackDirtyPages: false, clockRealtime: false, serialOutput: () => {}, onReset: () => {} });
  try {
    assert.equal(counter(restored.vmm), saved, 'memory holds the count at the snapshot');
    assert.equal(restored.config.machineConfig.vcpuCount, 2);
    assert.deepEqual(restored.vmm.devices.devices.map((d) => `${d.type}:${d.id}@${d.slot}`), ['block:root@0', 'rng:rng@1'], 'the devices are back in their slots');
    restored.vmm.start();
    const now = await countsOn(restored.vmm, saved);
    assert.ok(now > saved);
  } finally {
    await restored.vmm.close();
  }
});

test('with track_dirty_pages a Diff holds only the pages written since the Full, and base + Diff equals a Full', { skip }, async () => {
  const dir = tempDir('sparkler-snap-');
  const file = (name: string) => path.join(dir, name);
  const { vmm, vmConfig } = bootCounter(dir, 1, true);
  const opts = { vmConfig, vmmVersion: 'test', trackDirtyPages: true };
  try {
    await countsOn(vmm, 0n);
    await vmm.pause();
    createSnapshot(vmm, { ...opts, snapshotPath: file('full.snap'), memFilePath: file('base.mem'), snapshotType: 'Full' });
    vmm.resume();
    await countsOn(vmm, counter(vmm));
    await vmm.pause();
    // A Diff that cannot be written (the path is a directory) must not lose the pages it took from KVM's log.
    assert.throws(() => createSnapshot(vmm, { ...opts, snapshotPath: file('failed.snap'), memFilePath: dir, snapshotType: 'Diff' }), /Cannot write the snapshot/);
    const diff = createSnapshot(vmm, { ...opts, snapshotPath: file('diff.snap'), memFilePath: file('diff.mem'), snapshotType: 'Diff' });
    assert.ok(diff.pages >= 1 && diff.pages < 64, `the Diff wrote ${diff.pages} pages`);
    createSnapshot(vmm, { ...opts, snapshotPath: file('full2.snap'), memFilePath: file('full2.mem'), snapshotType: 'Full' });
  } finally {
    await vmm.close();
  }
  assert.ok(fs.statSync(file('diff.mem')).blocks * 512 < 1024 * 1024, 'the Diff file is sparse');
  const { mergeDiffOnto } = await import('./memory-file');
  mergeDiffOnto(file('base.mem'), file('diff.mem'));
  assert.ok(fs.readFileSync(file('base.mem')).equals(fs.readFileSync(file('full2.mem'))), 'base + Diff is byte-identical to a Full of that moment');
  const restored = restoreMicroVm({ snapshotPath: file('diff.snap'), memFilePath: file('base.mem'), trackDirtyPages: false, clockRealtime: false, serialOutput: () => {}, onReset: () => {} });
  try {
    const at = counter(restored.vmm);
    restored.vmm.start();
    await countsOn(restored.vmm, at);
  } finally {
    await restored.vmm.close();
  }
});

test('without track_dirty_pages a Diff holds the resident pages (mincore): Full + Diff equals a Full, also after a restore from the file', { skip }, async () => {
  const dir = tempDir('sparkler-snap-');
  const file = (name: string) => path.join(dir, name);
  const { vmm, vmConfig } = bootCounter(dir);
  const opts = { vmConfig, vmmVersion: 'test', trackDirtyPages: false };
  const guestPages = (64 << 20) / 4096;
  try {
    await countsOn(vmm, 0n);
    await vmm.pause();
    // Before anything read all of RAM, only the pages the loader and the guest touched are resident.
    const first = createSnapshot(vmm, { ...opts, snapshotPath: file('first.snap'), memFilePath: file('first.mem'), snapshotType: 'Diff' });
    assert.ok(first.pages >= 2 && first.pages < guestPages / 4, `the first Diff wrote ${first.pages} of ${guestPages} pages`);
    createSnapshot(vmm, { ...opts, snapshotPath: file('full.snap'), memFilePath: file('base.mem'), snapshotType: 'Full' });
    assert.ok(fs.readFileSync(file('first.mem')).equals(fs.readFileSync(file('base.mem'))), 'the first Diff equals a Full byte for byte');
    vmm.resume();
    await countsOn(vmm, counter(vmm));
    await vmm.pause();
    // Written after the Full by the host, as a device would: it must be in the Diff.
    vmm.parts.memory.view(guestAddress(0x800000), 3 * 4096).fill(0x5a);
    createSnapshot(vmm, { ...opts, snapshotPath: file('diff.snap'), memFilePath: file('diff.mem'), snapshotType: 'Diff' });
    createSnapshot(vmm, { ...opts, snapshotPath: file('full2.snap'), memFilePath: file('full2.mem'), snapshotType: 'Full' });
  } finally {
    await vmm.close();
  }
  assert.ok(fs.statSync(file('first.mem')).blocks * 512 < 16 << 20, 'the first Diff file is sparse');
  const { mergeDiffOnto } = await import('./memory-file');
  fs.copyFileSync(file('base.mem'), file('merged.mem'));
  mergeDiffOnto(file('merged.mem'), file('diff.mem'));
  assert.ok(fs.readFileSync(file('merged.mem')).equals(fs.readFileSync(file('full2.mem'))), 'base + Diff is byte-identical to a Full of that moment');

  // A VM restored from the base (MAP_PRIVATE): its Diff over that base is again the whole memory.
  const restored = restoreMicroVm({ snapshotPath: file('diff.snap'), memFilePath: file('merged.mem'), trackDirtyPages: false, clockRealtime: false, serialOutput: () => {}, onReset: () => {} });
  try {
    const at = counter(restored.vmm);
    restored.vmm.start();
    await countsOn(restored.vmm, at);
    await restored.vmm.pause();
    restored.vmm.parts.memory.view(guestAddress(0xc00000), 4096).fill(0xa5);
    // Pages of the file the guest never wrote are left out (they are the base's already).
    const second = createSnapshot(restored.vmm, { ...opts, snapshotPath: file('diff2.snap'), memFilePath: file('diff2.mem'), snapshotType: 'Diff' });
    assert.ok(second.pages >= 2, `the second Diff wrote ${second.pages} pages`);
    createSnapshot(restored.vmm, { ...opts, snapshotPath: file('full3.snap'), memFilePath: file('full3.mem'), snapshotType: 'Full' });
  } finally {
    await restored.vmm.close();
  }
  mergeDiffOnto(file('merged.mem'), file('diff2.mem'));
  assert.ok(fs.readFileSync(file('merged.mem')).equals(fs.readFileSync(file('full3.mem'))), 'restored base + its Diff is byte-identical to a Full');
  const again = restoreMicroVm({ snapshotPath: file('diff2.snap'), memFilePath: file('merged.mem'), trackDirtyPages: false, clockRealtime: false, serialOutput: () => {}, onReset: () => {} });
  try {
    assert.equal(again.vmm.parts.memory.view(guestAddress(0xc00000), 1)[0], 0xa5);
    const at = counter(again.vmm);
    again.vmm.start();
    await countsOn(again.vmm, at);
  } finally {
    await again.vmm.close();
  }
});

const privateKib = (): number => {
  const text = fs.readFileSync('/proc/self/smaps_rollup', 'utf8');
  return ['Private_Dirty', 'Private_Clean'].reduce((n, k) => n + Number(new RegExp(`${k}:\\s+(\\d+)`).exec(text)![1]), 0);
};

test('20 clones restored from one snapshot all count on, sharing the memory file\'s pages', { skip }, async () => {
  const dir = tempDir('sparkler-snap-');
  const snapshotPath = path.join(dir, 'vm.snap');
  const memFilePath = path.join(dir, 'vm.mem');
  const { vmm, vmConfig } = bootCounter(dir);
  await countsOn(vmm, 0n);
  await vmm.pause();
  // Touch 8 MiB more of guest RAM so that there is something to share.
  vmm.parts.memory.view(guestAddress(0x400000), 8 << 20).fill(0xab);
  createSnapshot(vmm, { snapshotPath, memFilePath, snapshotType: 'Full', vmConfig, vmmVersion: 'test', trackDirtyPages: false });
  await vmm.close();
  const before = privateKib();
  const clones: Vmm[] = [];
  const t0 = performance.now();
  try {
    for (let i = 0; i < 20; i++) {
      const r = restoreMicroVm({ snapshotPath, memFilePath, trackDirtyPages: false, clockRealtime: false, serialOutput: () => {}, onReset: () => {} });
      r.vmm.start();
      clones.push(r.vmm);
    }
    const startMs = performance.now() - t0;
    for (const c of clones) await countsOn(c, counter(c));
    for (const c of clones) assert.equal(c.parts.memory.view(guestAddress(0x400000 + (4 << 20)), 1)[0], 0xab, 'each clone reads the saved memory');
    const perClone = (privateKib() - before) / clones.length;
    console.log(`20 clones: restored and started in ${startMs.toFixed(0)} ms (${(startMs / 20).toFixed(1)} ms each); private memory ${perClone.toFixed(0)} KiB per clone (the snapshot's RAM holds 8 MiB written)`);
    assert.ok(perClone < 4096, `a clone's private memory (${perClone.toFixed(0)} KiB) stays well under the 8 MiB it reads from the shared file`);
  } finally {
    for (const c of clones) await c.close();
  }
});

test('Uffd: a restore whose memory a separate handler process serves counts on; a missing socket is refused in Firecracker\'s words', { skip }, async () => {
  const dir = tempDir('sparkler-snap-');
  const snapshotPath = path.join(dir, 'vm.snap');
  const memFilePath = path.join(dir, 'vm.mem');
  const socket = path.join(dir, 'uffd.sock');
  const { vmm, vmConfig } = bootCounter(dir);
  let saved: bigint;
  try {
    await countsOn(vmm, 0n);
    await vmm.pause();
    saved = counter(vmm);
    createSnapshot(vmm, { snapshotPath, memFilePath, snapshotType: 'Full', vmConfig, vmmVersion: 'test', trackDirtyPages: false });
  } finally {
    await vmm.close();
  }
  const load = (memBackend: 'Uffd') => restoreMicroVm({ snapshotPath, memFilePath: socket, memBackend, trackDirtyPages: false, clockRealtime: false, serialOutput: () => {}, onReset: () => {} });
  assert.throws(() => load('Uffd'), /Error creating guest memory from uffd: Failed to connect to UDS Unix stream: No such file or directory \(os error 2\)/);
  const { spawn } = await import('node:child_process');
  const handler = spawn(path.resolve(__dirname, '..', '..', 'bin', 'sparkler'), ['uffd-handler', '--mem-file', memFilePath, '--socket', socket], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  handler.stdout!.on('data', (c) => { out += c; });
  handler.stderr!.on('data', (c) => { out += c; });
  try {
    const deadline = Date.now() + 10_000;
    while (!out.includes('listening')) {
      if (Date.now() > deadline || handler.exitCode !== null) throw new Error(`the handler did not start: ${out}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const restored = load('Uffd');
    try {
      // Reading the counter here faults on this thread; the handler process serves the page.
      assert.equal(counter(restored.vmm), saved, `the handler served the saved count (${out})`);
      restored.vmm.start();
      await countsOn(restored.vmm, saved);
      assert.match(out, /uffd-handler: 2 regions|uffd-handler: 1 regions/);
    } finally {
      await restored.vmm.close();
    }
  } finally {
    handler.kill('SIGKILL');
  }
});

test('a VM with vsock and balloon devices is saved and restored: vsock_override moves the socket, a new generation ID is written', { skip }, async () => {
  const dir = tempDir('sparkler-snap-');
  const snapshotPath = path.join(dir, 'vm.snap');
  const memFilePath = path.join(dir, 'vm.mem');
  const kernel = path.join(dir, 'counter.elf');
  fs.writeFileSync(kernel, tinyKernel(COUNTER_GUEST));
  const config = emptyVmConfig();
  config.bootSource = { kernelImagePath: kernel, bootArgs: 'console=ttyS0' };
  config.machineConfig = { ...DEFAULT_MACHINE_CONFIG, vcpuCount: 1, memSizeMib: 64 };
  config.vsock = { guestCid: 3, udsPath: path.join(dir, 'v.sock') };
  config.balloon = { amountMib: 2, deflateOnOom: false, statsPollingIntervalS: 1, freePageHinting: false, freePageReporting: false };
  const vmm = buildMicroVm({ ...config, bootSource: config.bootSource, serialOutput: () => {}, onReset: () => {} });
  vmm.start();
  let savedId: Buffer;
  try {
    await countsOn(vmm, 0n);
    await vmm.pause();
    savedId = readGenerationId(vmm.parts.memory);
    assert.ok(savedId.some((b) => b !== 0), 'the boot wrote a generation ID');
    createSnapshot(vmm, { snapshotPath, memFilePath, snapshotType: 'Full', vmConfig: vmConfigToJson(config), vmmVersion: 'test', trackDirtyPages: false });
  } finally {
    await vmm.close();
  }
  const load = (overrides: Parameters<typeof restoreMicroVm>[0]['overrides']) => restoreMicroVm({ snapshotPath, memFilePath, trackDirtyPages: false, clockRealtime: false, serialOutput: () => {}, onReset: () => {}, overrides });
  assert.throws(() => load({ networkOverrides: [{ ifaceId: 'eth0', hostDevName: 'tap9' }] }), /Unknown Network Device/);
  const moved = path.join(dir, 'moved.sock');
  const restored = load({ vsockOverride: { udsPath: moved } });
  try {
    assert.deepEqual(restored.vmm.devices.devices.map((d) => `${d.type}:${d.id}@${d.slot}`), ['vsock:vsock@0', 'balloon:balloon@1']);
    assert.ok(fs.statSync(moved).isSocket(), 'the restored vsock listens on the override path');
    assert.equal(restored.config.vsock?.udsPath, moved);
    const id = readGenerationId(restored.vmm.parts.memory);
    assert.notDeepEqual(id, savedId, 'the restored VM has a new generation ID');
    assert.ok(id.some((b) => b !== 0));
    assert.equal(restored.state.vmGenId?.gsi, 3);
    const at = counter(restored.vmm);
    restored.vmm.start();
    await countsOn(restored.vmm, at);
  } finally {
    await restored.vmm.close();
  }
  assert.ok(!fs.existsSync(moved), 'its socket is removed when the VM closes');
});
