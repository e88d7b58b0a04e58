import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SyscallError } from '../errors';
import { FakeNative } from '../testing/fake-native';
import { EINTR_RETRIES, ioctl } from './check';
import { KVM, KVM_API_VERSION } from './ioctl-numbers';
import { Kvm } from './kvm';

const EINTR = 4;
const EINVAL = 22;

/** A fake whose ioctl `request` answers with the queued results first (then 0, or the API version). */
class InterruptingNative extends FakeNative {
  readonly queued = new Map<number, number[]>();
  override ioctl(fd: number, request: number): number {
    super.ioctl(fd, request);
    const next = this.queued.get(request)?.shift();
    if (next !== undefined) return next;
    return request === KVM.GET_API_VERSION ? KVM_API_VERSION : 0;
  }
  callsOf(request: number): number {
    return this.ioctls.filter((c) => c.request === request).length;
  }
}

test('KVM_CREATE_VM interrupted by signals is retried until it succeeds', () => {
  const shim = new InterruptingNative();
  const kvm = Kvm.open('/dev/kvm', shim);
  shim.queued.set(KVM.CREATE_VM, [-EINTR, -EINTR, -EINTR, 7]);
  const vm = kvm.createVm();
  assert.equal(vm.fd, 7);
  assert.equal(shim.callsOf(KVM.CREATE_VM), 4);
});

test('every ioctl of VmFd and VcpuFd goes through the retry', () => {
  const shim = new InterruptingNative();
  const vm = Kvm.open('/dev/kvm', shim).createVm();
  shim.queued.set(KVM.SET_TSS_ADDR, [-EINTR]);
  vm.setTssAddress(0xfffbd000);
  assert.equal(shim.callsOf(KVM.SET_TSS_ADDR), 2);
  const vcpu = vm.createVcpu(0, 4096);
  shim.queued.set(KVM.GET_LAPIC, [-EINTR, -EINTR]);
  vcpu.getLapic();
  assert.equal(shim.callsOf(KVM.GET_LAPIC), 3);
});

test('the retry is bounded: an ioctl interrupted every time fails with EINTR named', () => {
  const shim = new InterruptingNative();
  const kvm = Kvm.open('/dev/kvm', shim);
  shim.queued.set(KVM.CREATE_VM, new Array(1000).fill(-EINTR));
  assert.throws(() => kvm.createVm(), (err: unknown) => {
    assert.ok(err instanceof SyscallError);
    assert.equal(err.errno, EINTR);
    assert.match(err.message, /KVM_CREATE_VM failed: EINTR/);
    return true;
  });
  assert.equal(shim.callsOf(KVM.CREATE_VM), EINTR_RETRIES + 1);
});

test('other errors are not retried', () => {
  const shim = new InterruptingNative();
  shim.queued.set(KVM.CREATE_IRQCHIP, [-EINVAL, 0]);
  assert.equal(ioctl(shim, 3, KVM.CREATE_IRQCHIP, 0), -EINVAL);
  assert.equal(shim.callsOf(KVM.CREATE_IRQCHIP), 1);
});
