import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CpuidEntry } from './types';
import { CpuidError, cpuVendor, getBits, normalizeCpuid } from './cpuid';

const e = (fn: number, index: number, eax: number, ebx = 0, ecx = 0, edx = 0, flags = 0): CpuidEntry =>
  ({ function: fn, index, flags, eax, ebx, ecx, edx });

function vendorLeaf(v: string, maxLeaf: number): CpuidEntry {
  const b = Buffer.from(v, 'latin1');
  return e(0, 0, maxLeaf, b.readUInt32LE(0), b.readUInt32LE(8), b.readUInt32LE(4));
}

/** A hand-made KVM_GET_SUPPORTED_CPUID result for an Intel host (values loosely from a Skylake server). */
function intelSupported(): CpuidEntry[] {
  return [
    vendorLeaf('GenuineIntel', 0x1f),
    // leaf 1: host APIC id 0x2a and 0x40 logical ids in ebx, no hypervisor bit, HTT set.
    e(1, 0, 0x00050654, 0x2a400800, 0x7ffefbff, 0xbfebfbff),
    // leaf 4: L1d, L1i, L2, L3 as the host has them (shared by 2 / 2 / 2 / 64 threads, 32 cores).
    e(4, 0, 0x7c004121, 0x01c0003f, 0x3f, 0, 1),
    e(4, 1, 0x7c004122, 0x01c0003f, 0x3f, 0, 1),
    e(4, 2, 0x7c004143, 0x03c0003f, 0x3ff, 0, 1),
    e(4, 3, 0x7c0fc163, 0x0280003f, 0xdfff, 4, 1),
    e(4, 4, 0, 0, 0, 0, 1),
    e(6, 0, 0x00000077, 0x2, 0x9, 0),
    e(7, 0, 0, 0xd19f4fbb, 0x0000000c, 0xbc000400, 1),
    e(0xa, 0, 0x07300404, 0, 0, 0x603),
    // KVM on 6.x reports leaf 0xb / 0x1f with an empty subleaf 0 only.
    e(0xb, 0, 0, 0, 0, 0, 1),
    e(0x1f, 0, 0, 0, 0, 0, 1),
    e(0x40000000, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d),
    e(0x40000001, 0, 0x01007afb, 0, 0, 0),
    e(0x80000000, 0, 0x80000008),
    e(0x80000008, 0, 0x0000302e),
  ];
}

function amdSupported(): CpuidEntry[] {
  return [
    vendorLeaf('AuthenticAMD', 0x10),
    e(1, 0, 0x00830f10, 0x07100800, 0x7ed8320b, 0x178bfbff),
    e(6, 0, 0x4, 0, 0x1, 0),
    e(0x40000000, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d),
    e(0x40000001, 0, 0x01007afb, 0, 0, 0),
    e(0x80000000, 0, 0x8000001f),
    e(0x80000001, 0, 0x00830f10, 0, 0x358233ff, 0x2fd3fbff), // TOPOEXT (bit 22) clear
    e(0x80000008, 0, 0x3030, 0, 0x0000700f, 0),
    e(0x8000001d, 0, 0x00004121, 0x01c0003f, 0x3f, 0, 1),
    e(0x8000001d, 1, 0x00004122, 0x01c0003f, 0x3f, 0, 1),
    e(0x8000001d, 2, 0x00004143, 0x01c0003f, 0x3ff, 2, 1),
    e(0x8000001d, 3, 0x0003c163, 0x03c0003f, 0x3fff, 1, 1),
    e(0x8000001d, 4, 0, 0, 0, 0, 1),
    e(0x8000001e, 0, 0, 0, 0, 0),
  ];
}

const find = (l: CpuidEntry[], fn: number, index = 0): CpuidEntry => {
  const x = l.find((y) => y.function === fn && y.index === index);
  assert.ok(x, `leaf 0x${fn.toString(16)}.${index} present`);
  return x;
};

test('vendor detection from leaf 0', () => {
  assert.equal(cpuVendor(intelSupported()), 'intel');
  assert.equal(cpuVendor(amdSupported()), 'amd');
  assert.equal(cpuVendor([vendorLeaf('HygonGenuine', 0xd)]), 'hygon');
  assert.equal(cpuVendor([]), 'unknown');
});

test('leaf 1: hypervisor bit, APIC id, logical count, CLFLUSH, HTT, TSC deadline', () => {
  const supported = intelSupported();
  const out = normalizeCpuid(supported, { vcpuId: 3, vcpuCount: 6, smt: false });
  const l1 = find(out, 1);
  assert.equal(getBits(l1.ecx, 31, 1), 1, 'hypervisor');
  assert.equal(getBits(l1.ecx, 24, 1), 1, 'TSC deadline');
  assert.equal(getBits(l1.ebx, 24, 8), 3, 'initial APIC id = vCPU index');
  assert.equal(getBits(l1.ebx, 16, 8), 8, 'addressable ids: next power of two of 6');
  assert.equal(getBits(l1.ebx, 8, 8), 8, 'CLFLUSH 64-byte lines');
  assert.equal(getBits(l1.ebx, 0, 8), 0, 'brand index kept');
  assert.equal(getBits(l1.edx, 28, 1), 1, 'HTT with several vCPUs');
  assert.equal(l1.eax, 0x00050654, 'signature kept');
  assert.equal(find(supported, 1).ebx, 0x2a400800, 'input not modified');

  const single = find(normalizeCpuid(supported, { vcpuId: 0, vcpuCount: 1, smt: false }), 1);
  assert.equal(getBits(single.edx, 28, 1), 0, 'no HTT with one vCPU');
  assert.equal(getBits(single.ebx, 16, 8), 1);
  const noDeadline = find(normalizeCpuid([e(1, 0, 0)], { vcpuId: 0, vcpuCount: 1, smt: false, tscDeadline: false }), 1);
  assert.equal(getBits(noDeadline.ecx, 24, 1), 0);
});

test('leaf 0xb and 0x1f: SMT and core levels, x2APIC id, terminator', () => {
  const out = normalizeCpuid(intelSupported(), { vcpuId: 5, vcpuCount: 8, smt: true });
  for (const fn of [0xb, 0x1f]) {
    const subs = out.filter((x) => x.function === fn);
    assert.equal(subs.length, 3);
    const [smt, core, end] = subs;
    assert.deepEqual([smt.eax, smt.ebx, smt.ecx, smt.edx], [1, 2, 0x100, 5], 'SMT: shift 1, 2 threads');
    assert.deepEqual([core.eax, core.ebx, core.ecx, core.edx], [3, 8, 0x201, 5], 'core: shift 3, 8 logical');
    assert.deepEqual([end.eax, end.ebx, end.ecx, end.edx], [0, 0, 0x002, 5], 'invalid level ends the list');
    assert.ok(subs.every((x) => x.flags === 1), 'significant index');
  }
  const noSmt = normalizeCpuid(intelSupported(), { vcpuId: 2, vcpuCount: 3, smt: false }).filter((x) => x.function === 0xb);
  assert.deepEqual([noSmt[0].eax, noSmt[0].ebx], [0, 1]);
  assert.deepEqual([noSmt[1].eax, noSmt[1].ebx], [2, 3]);
  // A host without leaf 0xb does not grow one.
  assert.equal(normalizeCpuid(amdSupported(), { vcpuId: 0, vcpuCount: 2, smt: false }).some((x) => x.function === 0xb), false);
});

test('Intel leaf 4: L1/L2 shared by a core\'s threads, L3 by all vCPUs; cores per package', () => {
  const out = normalizeCpuid(intelSupported(), { vcpuId: 0, vcpuCount: 4, smt: true });
  const sharing = (i: number) => getBits(find(out, 4, i).eax, 14, 12) + 1;
  const cores = (i: number) => getBits(find(out, 4, i).eax, 26, 6) + 1;
  assert.deepEqual([sharing(0), sharing(1), sharing(2), sharing(3)], [2, 2, 2, 4]);
  assert.deepEqual([cores(0), cores(3)], [2, 2]);
  assert.equal(getBits(find(out, 4, 0).eax, 0, 14), 0x0121, 'type and level kept');
  assert.equal(find(out, 4, 4).eax, 0, 'null subleaf untouched');
  const noSmt = normalizeCpuid(intelSupported(), { vcpuId: 0, vcpuCount: 4, smt: false });
  assert.equal(getBits(find(noSmt, 4, 0).eax, 14, 12), 0);
  assert.equal(getBits(find(noSmt, 4, 0).eax, 26, 6), 3);
});

test('Intel leaf 6: no turbo boost, no energy/performance bias; leaf 0xa: no PMU', () => {
  const out = normalizeCpuid(intelSupported(), { vcpuId: 0, vcpuCount: 1, smt: false });
  const l6 = find(out, 6);
  assert.equal(getBits(l6.eax, 1, 1), 0);
  assert.equal(getBits(l6.eax, 2, 1), 1, 'ARAT kept');
  assert.equal(getBits(l6.ecx, 3, 1), 0);
  assert.equal(getBits(l6.ecx, 0, 1), 1);
  const la = find(out, 0xa);
  assert.deepEqual([la.eax, la.ebx, la.ecx, la.edx], [0, 0, 0, 0]);
});

test('KVM leaves: signature and max leaf; features as KVM reports them; added when missing', () => {
  const out = normalizeCpuid(intelSupported(), { vcpuId: 0, vcpuCount: 1, smt: false });
  const sig = find(out, 0x40000000);
  const name = Buffer.alloc(12);
  name.writeUInt32LE(sig.ebx, 0); name.writeUInt32LE(sig.ecx, 4); name.writeUInt32LE(sig.edx, 8);
  assert.equal(name.toString('latin1'), 'KVMKVMKVM\0\0\0');
  assert.equal(sig.eax, 0x40000001);
  assert.equal(find(out, 0x40000001).eax, 0x01007afb, 'KVM\'s feature bits untouched');

  const bare = normalizeCpuid([vendorLeaf('GenuineIntel', 1), e(1, 0, 0)], { vcpuId: 0, vcpuCount: 1, smt: false });
  assert.equal(find(bare, 0x40000000).eax, 0x40000001);
  const feat = find(bare, 0x40000001).eax;
  assert.equal(feat & 1, 1, 'KVM_FEATURE_CLOCKSOURCE');
  assert.equal((feat >>> 3) & 1, 1, 'KVM_FEATURE_CLOCKSOURCE2');
});

test('AMD: TOPOEXT, NC and ApicIdSize, cache sharing, extended APIC id leaf', () => {
  const out = normalizeCpuid(amdSupported(), { vcpuId: 3, vcpuCount: 4, smt: true });
  assert.equal(getBits(find(out, 0x80000001).ecx, 22, 1), 1, 'TOPOEXT');
  const sz = find(out, 0x80000008);
  assert.equal(getBits(sz.ecx, 0, 8), 3, 'NC = 4 - 1');
  assert.equal(getBits(sz.ecx, 12, 4), 2, 'ApicIdSize = log2(4)');
  assert.equal(getBits(sz.ecx, 16, 2), 0, 'other fields kept');
  assert.equal(sz.eax, 0x3030);
  const share = (i: number) => getBits(find(out, 0x8000001d, i).eax, 14, 12) + 1;
  assert.deepEqual([share(0), share(1), share(2), share(3)], [2, 2, 2, 4]);
  const ext = find(out, 0x8000001e);
  assert.equal(ext.eax, 3, 'extended APIC id');
  assert.equal(getBits(ext.ebx, 0, 8), 1, 'core id = 3 / 2');
  assert.equal(getBits(ext.ebx, 8, 8), 1, 'threads per core - 1');
  assert.equal(ext.ecx, 0, 'one node');
  // Intel leaf 6 rules do not apply to AMD.
  assert.equal(find(out, 6).ecx, 1);
  assert.equal(getBits(find(out, 1).ecx, 31, 1), 1);
});

test('hostVendor overrides leaf 0', () => {
  const out = normalizeCpuid(amdSupported(), { vcpuId: 1, vcpuCount: 2, smt: false, hostVendor: 'intel' });
  assert.equal(find(out, 0x8000001e).eax, 0, 'AMD rules not applied');
  assert.equal(getBits(find(out, 0x80000008).ecx, 0, 8), 0x0f);
  const amd = normalizeCpuid(amdSupported(), { vcpuId: 1, vcpuCount: 2, smt: false });
  assert.equal(find(amd, 0x8000001e).eax, 1, 'AMD rules applied from leaf 0');
});

test('invalid topologies are refused', () => {
  assert.throws(() => normalizeCpuid([], { vcpuId: 0, vcpuCount: 3, smt: true }), CpuidError);
  assert.throws(() => normalizeCpuid([], { vcpuId: 2, vcpuCount: 2, smt: false }), /out of range/);
  assert.throws(() => normalizeCpuid([], { vcpuId: 0, vcpuCount: 0, smt: false }), /between 1 and 128/);
  assert.throws(() => normalizeCpuid([], { vcpuId: 0, vcpuCount: 129, smt: false }), /between 1 and 128/);
  assert.doesNotThrow(() => normalizeCpuid([], { vcpuId: 0, vcpuCount: 1, smt: true }));
});
