/**
 * The VM lifecycle on real KVM: a build that fails at any step leaves nothing behind, close()
 * releases everything (fds, vCPU threads, guest RAM) and can be called twice, and a process that
 * builds, boots and closes many VMs in a row stays flat in fds, threads and memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildMicroVm, BuildOptions } from './builder';
import type { Vmm } from './vmm';
import { DEFAULT_MACHINE_CONFIG } from '../config/machine-config';
import { Kvm } from '../kvm/kvm';
import { native, NativeShim } from '../native';
import { kvmUnavailableReason } from '../testing/kvm-available';
import { tinyKernel } from '../testing/tiny-guests';
import { tempDir } from '../testing/temp-dir';
import { waitFor } from '../testing/wait';

const skip = kvmUnavailableReason();

const openFds = (): number => fs.readdirSync('/proc/self/fd').length;
const threads = (): number => fs.readdirSync('/proc/self/task').length;
/** Threads named `fc_vcpu N` (Node's own pool and platform threads come and go on their own). */
const vcpuThreads = (): number => fs.readdirSync('/proc/self/task')
  .filter((t) => { try { return fs.readFileSync(`/proc/self/task/${t}/comm`, 'utf8').startsWith('fc_vcpu'); } catch { return false; } }).length;
/**
 * Read-write mappings of at least a guest's RAM (64 MiB): guest RAM left mapped would be one. Not
 * VmSize, which also grows by 64 MiB whenever a thread (a V8 or libuv worker) first calls malloc
 * and glibc reserves it an arena (mostly PROT_NONE, so not counted here).
 */
const GUEST_MIB = 64;
const guestSizedMappings = (): number => fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((line) => {
  const [range, perms] = line.split(' ');
  if (!range || !perms?.startsWith('rw')) return false;
  const [lo, hi] = range.split('-').map((h) => BigInt(`0x${h}`));
  return hi! - lo! >= BigInt(GUEST_MIB) << 20n;
}).length;
const rssKib = (): number => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]);

function options(dir: string, extra: Partial<BuildOptions> = {}): BuildOptions & { stopped?: () => void } {
  const kernel = path.join(dir, 'tiny.elf');
  if (!fs.existsSync(kernel)) fs.writeFileSync(kernel, tinyKernel());
  // 1: jmp 1b
  const spin = path.join(dir, 'spin.elf');
  if (!fs.existsSync(spin)) fs.writeFileSync(spin, tinyKernel(Buffer.from('ebfe', 'hex')));
  const disk = path.join(dir, 'disk.img');
  if (!fs.existsSync(disk)) fs.writeFileSync(disk, Buffer.alloc(64 * 1024));
  return {
    bootSource: { kernelImagePath: kernel, bootArgs: 'console=ttyS0' },
    machineConfig: { ...DEFAULT_MACHINE_CONFIG, vcpuCount: 2, memSizeMib: GUEST_MIB },
    drives: [{ driveId: 'root', pathOnHost: disk, isRootDevice: true, isReadOnly: false, cacheType: 'Unsafe', ioEngine: 'Sync' }],
    entropy: {},
    serialOutput: () => {},
    onReset: () => {},
    ...extra,
  };
}

/** The real shim, but the `failAt`-th ioctl (counted from 1) fails with EIO. */
function failingShim(failAt: number): NativeShim {
  const real = native();
  let calls = 0;
  const ioctl: NativeShim['ioctl'] = (fd, request, arg) => (++calls === failAt ? -5 : real.ioctl(fd, request, arg));
  // A copy: the addon's own functions are read-only properties.
  const copy = Object.fromEntries(Object.getOwnPropertyNames(real).map((k) => [k, real[k as keyof NativeShim]]));
  return { ...copy, ioctl } as unknown as NativeShim;
}

test('a build that fails at any ioctl releases what it made', { skip }, async () => {
  const dir = tempDir('sparkler-lifecycle-');
  options(dir);
  const fdsBefore = openFds();
  const mappingsBefore = guestSizedMappings();
  let steps = 0;
  let built: Vmm | undefined;
  for (let failAt = 1; !built; failAt++) {
    let kvm: Kvm | undefined;
    try {
      kvm = Kvm.open('/dev/kvm', failingShim(failAt));
      // Every ioctl of the build went through once this succeeds: the step past the last one.
      built = buildMicroVm(options(dir, { kvm }));
      // The measure below sees guest RAM at all: a built VM's shows.
      assert.ok(guestSizedMappings() > mappingsBefore, 'a built VM\'s guest RAM is a read-write mapping of its size');
      await built.close();
    } catch (err) {
      assert.match((err as Error).message, /errno 5|EIO|I\/O error/i, `step ${failAt}: ${(err as Error).message}`);
      steps++;
    } finally {
      kvm?.close();
    }
    assert.equal(openFds(), fdsBefore, `fds left open after a build that failed at ioctl ${failAt}`);
  }
  assert.ok(steps > 20, `the build made ${steps} ioctls before succeeding`);
  // Guest RAM of a failed build left mapped would show here as one more 64 MiB read-write mapping.
  assert.equal(guestSizedMappings(), mappingsBefore, 'read-write mappings the size of guest RAM left behind');
});

test('close() stops a running VM, joins its threads, releases its fds and RAM, and can be called twice', { skip }, async () => {
  const dir = tempDir('sparkler-lifecycle-');
  const fdsBefore = openFds();
  // A guest that spins forever: close() must stop it.
  const vmm = buildMicroVm(options(dir, { bootSource: { kernelImagePath: path.join(dir, 'spin.elf') } }));
  try {
    vmm.start();
    // Each vCPU thread names itself as it starts.
    await waitFor(() => vcpuThreads() === 2, 'two threads named fc_vcpu');
    assert.equal(vmm.state, 'Running');
    const memory = vmm.parts.memory.regions[0].bytes;
    await Promise.all([vmm.close(), vmm.close()]);
    assert.equal(vmm.state, 'Stopped');
    assert.equal(memory.length, 0, 'guest RAM is unmapped: views read as empty');
    assert.equal(vcpuThreads(), 0, 'the vCPU threads were joined');
    assert.equal(openFds(), fdsBefore);
  } finally {
    // A spinning guest left running would keep this test process alive.
    await vmm.close();
  }
});

test('200 VMs built, booted and closed in a row: fds, threads and RSS stay flat', { skip, timeout: 120_000 }, async () => {
  const dir = tempDir('sparkler-lifecycle-');
  const samples: { n: number; fds: number; threads: number; rssKib: number }[] = [];
  const cycle = async (): Promise<void> => {
    let stopped!: () => void;
    const done = new Promise<void>((resolve) => { stopped = resolve; });
    const vmm = buildMicroVm(options(dir, { onReset: () => { vmm.stop({ kind: 'reset' }); stopped(); } }));
    vmm.start();
    await done;
    await vmm.close();
  };
  for (let n = 1; n <= 200; n++) {
    await cycle();
    if (n === 20 || n === 100 || n === 200) {
      global.gc?.();
      samples.push({ n, fds: openFds(), threads: threads(), rssKib: rssKib() });
      assert.equal(vcpuThreads(), 0, `vCPU threads left after VM ${n}`);
    }
  }
  console.log(`# lifecycle: ${samples.map((s) => `after ${s.n}: ${s.fds} fds, ${s.threads} threads, ${(s.rssKib / 1024).toFixed(1)} MiB RSS`).join('; ')}`);
  const [first, , last] = samples;
  assert.equal(last.fds, first.fds, 'open fds');
  // Node's own worker threads may start late; a leaked vCPU thread per VM would add 360.
  assert.ok(last.threads <= first.threads + 2, `threads: ${first.threads} after VM 20, ${last.threads} after VM 200`);
  assert.ok(last.rssKib - first.rssKib < 16 * 1024, `RSS grew by ${last.rssKib - first.rssKib} KiB from VM 20 to VM 200`);
});
