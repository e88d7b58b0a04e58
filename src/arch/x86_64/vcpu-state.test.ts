import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory } from '../../memory/guest-memory';
import { MiB } from './layout';
import { applyLongMode, bootSregs, resetSregs, setupLongModeTables } from './sregs';
import { bootFpu, bootRegs } from './regs';
import { bootMsrs } from './msrs';
import { lapicLint } from './lapic';

test('boot sregs: long mode, paging, flat segments from the GDT', () => {
  const mem = GuestMemory.fromLayout([{ start: 0, size: 2 * MiB }]);
  const s = bootSregs(mem);
  assert.equal(s.cr0 & 0x8000_0011n, 0x8000_0011n, 'PG | ET | PE');
  assert.equal(s.cr0 & 0x6000_0000n, 0n, 'caches enabled (CD, NW clear)');
  assert.equal(s.cr4 & 0x20n, 0x20n, 'PAE');
  assert.equal(s.efer & 0x500n, 0x500n, 'LME | LMA');
  assert.equal(s.cr3, 0x9000n);
  assert.deepEqual(s.gdt, { base: 0x500n, limit: 31 });
  assert.deepEqual(s.idt, { base: 0x520n, limit: 7 });
  assert.equal(s.cs.selector, 0x8);
  assert.equal(s.cs.l, 1);
  for (const seg of [s.ds, s.es, s.fs, s.gs, s.ss]) {
    assert.equal(seg.selector, 0x10);
    assert.equal(seg.type, 3);
  }
  assert.equal(s.tr.selector, 0x18);
  assert.equal(s.apicBase, 0xfee00900n, 'fields boot does not own are kept');
});

test('applyLongMode keeps what KVM reported and only ORs its bits in', () => {
  const mem = GuestMemory.fromLayout([{ start: 0, size: 2 * MiB }]);
  const lm = setupLongModeTables(mem);
  const cur = { ...resetSregs(), cr4: 0x40000n, efer: 0x1n, apicBase: 0xfee00800n, cr8: 5n };
  const s = applyLongMode(cur, lm);
  assert.equal(s.cr4, 0x40020n);
  assert.equal(s.efer, 0x501n);
  assert.equal(s.apicBase, 0xfee00800n);
  assert.equal(s.cr8, 5n);
  assert.equal(cur.cr4, 0x40000n, 'input not modified');
});

test('boot regs: rip = entry, rsp = rbp = 0x8ff0, rsi = zero page, rflags = 2', () => {
  const r = bootRegs(0x1000000);
  assert.equal(r.rip, 0x1000000n);
  assert.equal(r.rsp, 0x8ff0n);
  assert.equal(r.rbp, 0x8ff0n);
  assert.equal(r.rsi, 0x7000n);
  assert.equal(r.rflags, 2n);
  assert.equal(r.rax | r.rbx | r.rcx | r.rdx | r.rdi | r.r8 | r.r15, 0n);
});

test('boot FPU: fcw 0x37f, mxcsr 0x1f80', () => {
  assert.deepEqual(bootFpu(), { fcw: 0x37f, mxcsr: 0x1f80 });
});

test('boot MSRs as Firecracker', () => {
  const m = new Map(bootMsrs().map((e) => [e.index, e.data]));
  assert.equal(m.size, 11);
  for (const zero of [0x174, 0x175, 0x176, 0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, 0xc0000102, 0x10]) {
    assert.equal(m.get(zero), 0n, `MSR 0x${zero.toString(16)} is zero`);
  }
  assert.equal(m.get(0x1a0), 1n, 'IA32_MISC_ENABLE fast strings');
  assert.equal(m.get(0x2ff), 0x806n, 'MTRRdefType enabled, write-back');
});

test('LAPIC LINT0 = ExtINT, LINT1 = NMI, other bits kept', () => {
  const page = Buffer.alloc(1024);
  page.writeUInt32LE(0x0001_0700, 0x350); // masked, some old delivery mode
  page.writeUInt32LE(0x0001_0000, 0x360); // masked, fixed
  page.writeUInt32LE(0xabcd, 0x340);
  lapicLint(page);
  assert.equal(page.readUInt32LE(0x350), 0x0001_0700);
  assert.equal(page.readUInt32LE(0x360), 0x0001_0400);
  assert.equal(page.readUInt32LE(0x340), 0xabcd);
  const fresh = lapicLint(Buffer.alloc(1024));
  assert.equal(fresh.readUInt32LE(0x350), 0x700);
  assert.equal(fresh.readUInt32LE(0x360), 0x400);
  assert.throws(() => lapicLint(Buffer.alloc(16)), /1024 bytes/);
});
