/**
 * Real KVM: a VM with a balloon gets a virtio-balloon device in the device manager (its slot on
 * the kernel command line, its metrics group), and madvise through it really lowers resident
 * guest RAM; huge_pages "2M" either maps hugetlbfs RAM or refuses the start with the pool named.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildMicroVm } from './builder';
import { DEFAULT_MACHINE_CONFIG } from '../config/machine-config';
import { VirtioBalloon } from '../devices/virtio/balloon/device';
import { PageDiscarder } from '../devices/virtio/balloon/page-discard';
import { hugePagePool } from '../memory/hugetlb-memory';
import { native } from '../native';
import { kvmUnavailableReason } from '../testing/kvm-available';
import { tempDir } from '../testing/temp-dir';
import { tinyKernel } from '../testing/tiny-guests';

const skip = kvmUnavailableReason();
const MiB = 1024 * 1024;

function kernelFile(): string {
  const file = path.join(tempDir('sparkler-balloon-'), 'tiny.elf');
  fs.writeFileSync(file, tinyKernel());
  return file;
}

const balloon = { amountMib: 16, deflateOnOom: true, statsPollingIntervalS: 1, freePageHinting: false, freePageReporting: true };

/** Resident bytes of the mapping holding `address` (Rss of its /proc/self/smaps entry). */
function residentAt(address: bigint): number {
  const lines = fs.readFileSync('/proc/self/smaps', 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(lines[i]);
    if (!m || address < BigInt(`0x${m[1]}`) || address >= BigInt(`0x${m[2]}`)) continue;
    for (let j = i + 1; j < lines.length; j++) {
      const rss = /^Rss:\s+(\d+) kB/.exec(lines[j]);
      if (rss) return Number(rss[1]) * 1024;
    }
  }
  return NaN;
}

test('a balloon section attaches virtio-balloon, and its discard lowers resident guest RAM', { skip }, async () => {
  const vmm = buildMicroVm({
    bootSource: { kernelImagePath: kernelFile(), bootArgs: 'console=ttyS0' },
    machineConfig: { ...DEFAULT_MACHINE_CONFIG, memSizeMib: 128 },
    balloon,
    serialOutput: () => {},
    onReset: () => {},
  });
  try {
    const attached = vmm.devices.find('balloon', 'balloon');
    assert.ok(attached && attached.created.device instanceof VirtioBalloon);
    assert.ok(vmm.devices.cmdlineFragments().some((f) => f.startsWith('virtio_mmio.device=4K@')));
    assert.ok(vmm.devices.metrics().has('balloon'));
    assert.equal((attached.created.device as VirtioBalloon).config.amountMib, 16);
    // The same discard the spec uses, on this VM's RAM: 32 MiB touched, then dropped.
    const memory = vmm.parts.memory;
    const region = memory.regions[0];
    memory.view(64 * MiB, 32 * MiB).fill(0x5a);
    const before = residentAt(region.hostAddress);
    const pages = new PageDiscarder(memory, (b) => native().madvise(b, 4));
    const counts = pages.inflate(Array.from({ length: 8192 }, (_, i) => 64 * 256 + i));
    const after = residentAt(region.hostAddress);
    assert.equal(counts.discardedBytes, 32 * MiB);
    assert.ok(before - after >= 30 * MiB, `resident ${before / MiB} -> ${after / MiB} MiB`);
    assert.equal(memory.view(64 * MiB, 32 * MiB).every((b) => b === 0), true, 'dropped pages read as zero');
  } finally {
    vmm.close();
  }
});

test('huge_pages "2M": guest RAM from hugetlbfs, or a start refused with the pool named', { skip }, () => {
  const pool = hugePagePool();
  const build = () => buildMicroVm({
    bootSource: { kernelImagePath: kernelFile(), bootArgs: 'console=ttyS0' },
    machineConfig: { ...DEFAULT_MACHINE_CONFIG, memSizeMib: 32, hugePages: '2M' },
    balloon: { ...balloon, amountMib: 0 },
    serialOutput: () => {},
    onReset: () => {},
  });
  if (pool !== undefined && pool.free >= 16) {
    build().close();
    return;
  }
  assert.throws(build, (e: Error & { code?: string }) => /huge pages/.test(e.message) && /Raise \/proc\/sys\/vm\/nr_hugepages|no 2 MiB hugetlbfs pool/.test(e.message));
});
