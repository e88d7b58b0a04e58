import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory } from '../../memory/guest-memory';
import { BOOT_GDT, gdtEntry, segmentFromGdt, writeGdtIdt } from './gdt';
import { writeIdentityPageTables } from './paging';
import { MiB } from './layout';

test('GDT entries pack as Firecracker\'s (null, code 0xa09b, data 0xc093, TSS 0x808b)', () => {
  assert.equal(BOOT_GDT[0], 0n);
  assert.equal(BOOT_GDT[1], 0x00af_9b00_0000_ffffn);
  assert.equal(BOOT_GDT[2], 0x00cf_9300_0000_ffffn);
  assert.equal(BOOT_GDT[3], 0x008f_8b00_0000_ffffn);
  assert.equal(gdtEntry(0x9b, 0x12345678, 0xabcde), 0x120a_9b34_5678_bcden);
});

test('segments decoded from the GDT', () => {
  const code = segmentFromGdt(BOOT_GDT[1], 1);
  assert.deepEqual(code, { base: 0n, limit: 0xffffffff, selector: 8, type: 0xb, present: 1, dpl: 0, db: 0, s: 1, l: 1, g: 1, avl: 0, unusable: 0 });
  const data = segmentFromGdt(BOOT_GDT[2], 2);
  assert.deepEqual(data, { base: 0n, limit: 0xffffffff, selector: 0x10, type: 3, present: 1, dpl: 0, db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0 });
  const tss = segmentFromGdt(BOOT_GDT[3], 3);
  assert.equal(tss.selector, 0x18);
  assert.equal(tss.type, 0xb);
  assert.equal(tss.s, 0);
  assert.equal(segmentFromGdt(0n, 0).unusable, 1);
  const odd = segmentFromGdt(gdtEntry(0x0093, 0x12345678, 0x1234), 5);
  assert.equal(odd.base, 0x12345678n);
  assert.equal(odd.limit, 0x1234, 'no scaling without G');
});

test('GDT and IDT are written at 0x500 and 0x520', () => {
  const mem = GuestMemory.fromLayout([{ start: 0, size: 1 * MiB }]);
  mem.writeU64(0x520, 0xdeadn);
  const seg = writeGdtIdt(mem);
  for (let i = 0; i < 4; i++) assert.equal(mem.readU64(0x500 + i * 8), BOOT_GDT[i]);
  assert.equal(mem.readU64(0x520), 0n);
  assert.deepEqual(seg.gdt, { base: 0x500n, limit: 31 });
  assert.deepEqual(seg.idt, { base: 0x520n, limit: 7 });
  assert.equal(seg.code.selector, 8);
});

test('identity page tables map the first GiB with 2 MiB pages', () => {
  const mem = GuestMemory.fromLayout([{ start: 0, size: 1 * MiB }]);
  assert.equal(writeIdentityPageTables(mem), 0x9000n);
  assert.equal(mem.readU64(0x9000), 0xa003n);
  assert.equal(mem.readU64(0xa000), 0xb003n);
  assert.equal(mem.readU64(0x9008), 0n);
  assert.equal(mem.readU64(0xa008), 0n);
  assert.equal(mem.readU64(0xb000), 0x83n);
  assert.equal(mem.readU64(0xb008), 0x200083n);
  assert.equal(mem.readU64(0xb000 + 511 * 8), (511n << 21n) | 0x83n);
  // Walk the tables for an address: 0x3fedcba9 maps to itself.
  const va = 0x3fedcba9n;
  const pml4e = mem.readU64(0x9000 + Number((va >> 39n) & 0x1ffn) * 8);
  const pdpte = mem.readU64(Number(pml4e & ~0xfffn) + Number((va >> 30n) & 0x1ffn) * 8);
  const pde = mem.readU64(Number(pdpte & ~0xfffn) + Number((va >> 21n) & 0x1ffn) * 8);
  assert.ok(pde & 0x80n);
  assert.equal((pde & ~0x1fffffn & 0xf_ffff_ffff_f000n) | (va & 0x1fffffn), va);
});
