import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KVM } from './ioctl-numbers';

// Values as the kernel headers expand them (checked against linux/kvm.h on x86_64).
test('KVM ioctl numbers match the kernel ABI', () => {
  assert.equal(KVM.GET_API_VERSION, 0xae00);
  assert.equal(KVM.CREATE_VM, 0xae01);
  assert.equal(KVM.RUN, 0xae80);
  assert.equal(KVM.SET_USER_MEMORY_REGION, 0x4020ae46);
  assert.equal(KVM.GET_REGS, 0x8090ae81);
  assert.equal(KVM.SET_SREGS, 0x4138ae84);
  assert.equal(KVM.SET_CPUID2, 0x4008ae90);
  assert.equal(KVM.GET_SUPPORTED_CPUID, 0xc008ae05);
  assert.equal(KVM.CREATE_PIT2, 0x4040ae77);
  assert.equal(KVM.IRQFD, 0x4020ae76);
  assert.equal(KVM.IOEVENTFD, 0x4040ae79);
  assert.equal(KVM.SET_LAPIC, 0x4400ae8f);
  assert.equal(KVM.SET_FPU, 0x41a0ae8d);
});
