/**
 * Real-KVM tests of the vCPU threads on the local /dev/kvm, with 64-bit guests of a few
 * instructions and no in-kernel irqchip (so every vCPU starts at once at its own rip).
 * Long mode, not real mode: PVM emulates real-mode code instruction by instruction and gives
 * up with an internal error on a spinning real-mode loop after a few hundred iterations.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kvm, VcpuFd } from '../kvm';
import { createAnonymousGuestMemory } from '../memory/anonymous-memory';
import { Bus, BusDevice } from '../devices/bus';
import { VcpuRunner, VmStopReason } from './vcpu-runner';
import { kvmUnavailableReason } from '../testing/kvm-available';
import { waitFor } from '../testing/wait';
import { bootSregs } from '../arch/x86_64/sregs';

const skip = kvmUnavailableReason();

class PortRecorder implements BusDevice {
  readonly written: number[] = [];
  read(_offset: number, data: Buffer): void { data.fill(0x42); }
  write(_offset: number, data: Buffer): void { this.written.push(data[0]); }
}

const CODE_START = 0x2000;

/**
 * Guest memory is unmapped when its ArrayBuffer is collected; a running guest whose memory
 * vanished triple-faults. The VMM keeps memory reachable through the Vmm; these tests keep it here.
 */
const liveGuestMemory: unknown[] = [];

/** A VM with `vcpus` 64-bit vCPUs on the boot page tables, vCPU n running `code(n)` at 0x2000 + n * 0x100. */
function longModeVm(vcpus: number, code: (n: number) => number[]) {
  const kvm = Kvm.open();
  const vm = kvm.createVm();
  const mem = createAnonymousGuestMemory([{ start: 0, size: 0x10000 }]);
  vm.setUserMemoryRegion(0, 0, 0x10000, mem.regions[0].hostAddress);
  liveGuestMemory.push(mem);
  const fds = [];
  for (let n = 0; n < vcpus; n++) {
    mem.write(CODE_START + n * 0x100, Buffer.from(code(n)));
    const vcpu = vm.createVcpu(n, kvm.vcpuMmapSize());
    vcpu.setSregs(bootSregs(mem, vcpu.getSregs()));
    vcpu.setRegs({ ...vcpu.getRegs(), rip: BigInt(CODE_START + n * 0x100), rflags: 2n });
    fds.push(vcpu);
  }
  return { fds, mem };
}

/** A runner whose vCPUs write to a recorder at COM1's ports, and a promise of its stop. */
function recordedRunner(fds: VcpuFd[]) {
  const pio = new Bus();
  const port = new PortRecorder();
  pio.insert(port, 0x3f8, 8, 'recorder');
  let resolveStop!: (r: VmStopReason) => void;
  const stopped = new Promise<VmStopReason>((r) => { resolveStop = r; });
  const runner = new VcpuRunner(fds, { pio, mmio: new Bus(), onStop: resolveStop });
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('guest did not stop in 20 s')), 20_000).unref());
  return { port, runner, stopped: Promise.race([stopped, timeout]) };
}

test('port writes from a guest reach the bus, port reads are answered, HLT stops the VM', { skip }, async () => {
  // mov $0x3f8,%dx; mov $'K',%al; out %al,(%dx); in (%dx),%al; out %al,(%dx); hlt
  const { fds } = longModeVm(1, () => [0x66, 0xba, 0xf8, 0x03, 0xb0, 0x4b, 0xee, 0xec, 0xee, 0xf4]);
  const { port, runner, stopped } = recordedRunner(fds);
  runner.start();
  assert.deepEqual(await stopped, { kind: 'halt' });
  assert.deepEqual(port.written, [0x4b, 0x42]);
  assert.equal(runner.exits.io, 3);
});

test('two vCPUs run on their own threads and both reach the bus', { skip }, async () => {
  // vCPU n: mov $0x3f8,%dx; mov $'0'+n,%al; out %al,(%dx); then spin until the VMM stops it
  const { fds } = longModeVm(2, (n) => [0x66, 0xba, 0xf8, 0x03, 0xb0, 0x30 + n, 0xee, 0xeb, 0xfe]);
  const { port, runner, stopped } = recordedRunner(fds);
  runner.start();
  await waitFor(() => port.written.length >= 2, 'both vCPUs to write');
  assert.deepEqual([...port.written].sort(), [0x30, 0x31]);
  // Both vCPUs now spin in `jmp $`: stopping must interrupt KVM_RUN on both threads.
  runner.stop({ kind: 'requested' });
  assert.deepEqual(await stopped, { kind: 'requested' });
});
