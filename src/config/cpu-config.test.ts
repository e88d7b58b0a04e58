import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyCpuidModifiers, applyMsrModifiers, checkKvmCapabilities, cpuConfigToJson, parseBitmap, parseCpuConfig } from './cpu-config';
import { ConfigError } from './validate';

const ONES = '1'.repeat(32);

test('bitmaps: 0 clears, 1 sets, x keeps; underscores are ignored', () => {
  assert.deepEqual(parseBitmap(`0b${'x'.repeat(28)}0001`, 32, 'b'), { mask: 0xfn, value: 1n });
  assert.deepEqual(parseBitmap(`0b${'x'.repeat(30)}_1x`, 32, 'b'), { mask: 2n, value: 2n });
  assert.deepEqual(parseBitmap(`0b${'1'.repeat(64)}`, 64, 'b'), { mask: (1n << 64n) - 1n, value: (1n << 64n) - 1n });
  for (const bad of ['0b1', `${ONES}`, `0b${'2'.repeat(32)}`, `0b${ONES}1`]) {
    assert.throws(() => parseBitmap(bad, 32, 'where'), /where: must be "0b" followed by 32 characters among 0, 1 and x/);
  }
});

test('a template parses (hex, binary, decimal numbers) and round-trips through its JSON form', () => {
  const c = parseCpuConfig({
    kvm_capabilities: ['121', '!7'],
    cpuid_modifiers: [{ leaf: '0x1', subleaf: '0b0', flags: 0, modifiers: [{ register: 'ecx', bitmap: `0b${'x'.repeat(31)}1` }] }],
    msr_modifiers: [{ addr: '266', bitmap: `0b${'x'.repeat(63)}0` }],
  });
  assert.deepEqual(c.kvmCapabilities, [{ cap: 121, remove: false }, { cap: 7, remove: true }]);
  assert.equal(c.cpuidModifiers[0].leaf, 1);
  assert.equal(c.msrModifiers[0].addr, 0x10a);
  assert.deepEqual(parseCpuConfig(cpuConfigToJson(c)), c);
  assert.deepEqual(parseCpuConfig({}), { kvmCapabilities: [], cpuidModifiers: [], msrModifiers: [] });
});

test('template validation errors name the place', () => {
  const bad: Array<[unknown, RegExp]> = [
    [{ cpuid_modifiers: [{ subleaf: '0', flags: 0, modifiers: [] }] }, /cpuid_modifiers\[0\]: missing field `leaf`/],
    [{ cpuid_modifiers: [{ leaf: 'zz', subleaf: '0', flags: 0, modifiers: [] }] }, /cpuid_modifiers\[0\]\.leaf: "zz" is not a number/],
    [{ cpuid_modifiers: [{ leaf: '0', subleaf: '0', flags: 0, modifiers: [{ register: 'esi', bitmap: `0b${ONES}` }] }] }, /`register` must be one of "eax"/],
    [{ cpuid_modifiers: [{ leaf: '0', subleaf: '0', modifiers: [] }] }, /missing field `flags`/],
    [{ msr_modifiers: [{ addr: '0x1_0000_0000', bitmap: `0b${ONES}${ONES}` }] }, /addr: "0x1_0000_0000" is not a number between 0 and 0xffffffff/],
    [{ msr_modifiers: [{ addr: '1', bitmap: `0b${ONES}` }] }, /bitmap: must be "0b" followed by 64 characters/],
    [{ kvm_capabilities: [121] }, /kvm_capabilities\[0\]: must be a string/],
    [{ reg_modifiers: [{ addr: '0', bitmap: '0b1' }] }, /`reg_modifiers` applies to aarch64 only/],
    [{ cpuid: [] }, /unknown field `cpuid`/],
  ];
  for (const [value, message] of bad) {
    assert.throws(() => parseCpuConfig(value), (e: unknown) => e instanceof ConfigError && message.test(e.message), JSON.stringify(value));
  }
});

test('modifiers apply on top of CPUID and MSRs; missing leaves and MSRs are added', () => {
  const cpuid = [{ function: 1, index: 0, flags: 0, eax: 0, ebx: 0, ecx: 0xffff_0000, edx: 0 }];
  const out = applyCpuidModifiers(cpuid, [
    { leaf: 1, subleaf: 0, flags: 0, modifiers: [{ register: 'ecx', bitmap: { mask: 0x8000_0001n, value: 1n } }] },
    { leaf: 0x4000_0000, subleaf: 0, flags: 1, modifiers: [{ register: 'ebx', bitmap: { mask: 0xffff_ffffn, value: 0x4b525053n } }] },
  ]);
  assert.equal(out[0].ecx, 0x7fff_0001);
  assert.equal(cpuid[0].ecx, 0xffff_0000, 'the input is not changed');
  assert.deepEqual(out[1], { function: 0x4000_0000, index: 0, flags: 1, eax: 0, ebx: 0x4b525053, ecx: 0, edx: 0 });
  const msrs = applyMsrModifiers([{ index: 0x1a0, data: 1n }], [{ addr: 0x1a0, bitmap: { mask: 3n, value: 2n } }, { addr: 0x10a, bitmap: { mask: 0xffn, value: 0x1ffn } }]);
  assert.deepEqual(msrs, [{ index: 0x1a0, data: 2n }, { index: 0x10a, data: 0xffn }]);
});

test('required KVM capabilities are checked, removed ones are not', () => {
  const c = parseCpuConfig({ kvm_capabilities: ['5', '!6', '7'] });
  assert.throws(() => checkKvmCapabilities(c, (cap) => (cap === 5 ? 1 : 0)), /lacks the required capability 7/);
  assert.doesNotThrow(() => checkKvmCapabilities(c, (cap) => (cap === 6 ? 0 : 1)));
});
