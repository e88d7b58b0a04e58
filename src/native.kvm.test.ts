/**
 * The native shim against the local /dev/kvm: the ioctl length check, and the vCPU threads'
 * names, with a 64-bit guest of two instructions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { native } from './native';
import { Kvm } from './kvm';
import { KVM, SIZE } from './kvm/ioctl-numbers';
import { createAnonymousGuestMemory } from './memory/anonymous-memory';
import { Bus } from './devices/bus';
import { VcpuRunner, VmStopReason } from './vmm/vcpu-runner';
import { bootSregs } from './arch/x86_64/sregs';
import { kvmUnavailableReason } from './testing/kvm-available';
import { waitFor } from './testing/wait';

const skip = kvmUnavailableReason();
const EINVAL = 22;
const CODE_START = 0x2000;

/** The comm of every thread of this process. */
function threadNames(): string[] {
  return fs.readdirSync('/proc/self/task').map((tid) => {
    try {
      return fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trimEnd();
    } catch {
      return ''; // the thread ended meanwhile
    }
  });
}

test('an ioctl into a view shorter than its struct is refused with -EINVAL and not made', { skip }, () => {
  const kvm = Kvm.open();
  const vm = kvm.createVm();
  const vcpu = vm.createVcpu(0, kvm.vcpuMmapSize());
  const shim = native();
  const short = Buffer.alloc(16, 0xaa);
  assert.equal(shim.ioctl(vcpu.fd, KVM.GET_REGS, short), -EINVAL);
  assert.ok(short.every((b) => b === 0xaa), 'the kernel wrote nothing');
  const oneShort = new Uint8Array(SIZE.regs - 1);
  assert.equal(shim.ioctl(vcpu.fd, KVM.GET_REGS, oneShort), -EINVAL, 'one byte short is short');
  // 36 elements of 4 bytes: counted in bytes (144), the length KVM_GET_REGS encodes.
  const words = new Uint32Array(SIZE.regs / 4).fill(0xffffffff);
  assert.equal(shim.ioctl(vcpu.fd, KVM.GET_REGS, words), 0);
  assert.equal(words[34], 2, 'rflags (offset 136) holds its reset value, 2');
  const view = new DataView(new ArrayBuffer(SIZE.regs + 8));
  assert.equal(shim.ioctl(vcpu.fd, KVM.GET_REGS, view), 0, 'longer than the struct is fine');
  assert.equal(view.getUint32(136, true), 2);
  // Through the typed wrappers, including the variable-length structs (header-only sizes).
  vcpu.setRegs(vcpu.getRegs());
  vcpu.setSregs(vcpu.getSregs());
  vcpu.setCpuid2(kvm.supportedCpuid());
  vcpu.setMsrs([{ index: 0x174, data: 0n }]);
  assert.equal(vcpu.getMsrs([0x174])[0].data, 0n);
});

test('vCPU threads are named `fc_vcpu N`, as Firecracker names them', { skip }, async () => {
  const kvm = Kvm.open();
  const vm = kvm.createVm();
  const mem = createAnonymousGuestMemory([{ start: 0, size: 0x10000 }]);
  vm.setUserMemoryRegion(0, 0, 0x10000, mem.regions[0].hostAddress);
  const fds = [0, 1].map((n) => {
    mem.write(CODE_START + n * 0x100, Buffer.from([0xeb, 0xfe])); // jmp $
    const vcpu = vm.createVcpu(n, kvm.vcpuMmapSize());
    vcpu.setSregs(bootSregs(mem, vcpu.getSregs()));
    vcpu.setRegs({ ...vcpu.getRegs(), rip: BigInt(CODE_START + n * 0x100), rflags: 2n });
    return vcpu;
  });
  assert.deepEqual(threadNames().filter((n) => n.startsWith('fc_vcpu')), [], 'no vCPU threads yet');
  let stopped!: (r: VmStopReason) => void;
  const stop = new Promise<VmStopReason>((r) => { stopped = r; });
  const runner = new VcpuRunner(fds, { pio: new Bus(), mmio: new Bus(), onStop: stopped });
  runner.start();
  try {
    await waitFor(() => threadNames().filter((n) => n.startsWith('fc_vcpu')).length === 2, 'two vCPU threads');
    assert.deepEqual(threadNames().filter((n) => n.startsWith('fc_vcpu')).sort(), ['fc_vcpu 0', 'fc_vcpu 1']);
  } finally {
    runner.stop({ kind: 'requested' });
    assert.deepEqual(await stop, { kind: 'requested' });
  }
  assert.equal(mem.regions.length, 1, 'guest memory stayed reachable while the guest ran');
});
