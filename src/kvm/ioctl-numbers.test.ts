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

// The state ioctls a snapshot uses, as <linux/kvm.h> expands them (printed by a C program on x86_64).
test('KVM state ioctl numbers match the kernel ABI', () => {
  const expected: Partial<Record<keyof typeof KVM, number>> = {
    GET_CPUID2: 0xc008ae91, GET_DIRTY_LOG: 0x4010ae42, GET_IRQCHIP: 0xc208ae62, SET_IRQCHIP: 0x8208ae63,
    SET_CLOCK: 0x4030ae7b, GET_CLOCK: 0x8030ae7c, GET_MP_STATE: 0x8004ae98, SET_MP_STATE: 0x4004ae99,
    GET_PIT2: 0x8070ae9f, SET_PIT2: 0x4070aea0, GET_VCPU_EVENTS: 0x8040ae9f, SET_VCPU_EVENTS: 0x4040aea0,
    GET_DEBUGREGS: 0x8080aea1, SET_DEBUGREGS: 0x4080aea2, SET_TSC_KHZ: 0xaea2, GET_TSC_KHZ: 0xaea3,
    GET_XSAVE: 0x9000aea4, SET_XSAVE: 0x5000aea5, GET_XCRS: 0x8188aea6, SET_XCRS: 0x4188aea7, KVMCLOCK_CTRL: 0xaead,
  };
  for (const [name, value] of Object.entries(expected)) assert.equal(KVM[name as keyof typeof KVM], value, name);
});
