import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BOOT_STACK_POINTER, BOOT_TIMER_START, CMDLINE_MAX_SIZE, CMDLINE_START, EBDA_START, GDT_START, GiB,
  HIGH_MEMORY_START, IDT_START, IOAPIC_START, LAPIC_START, MAX_REGION_SIZE, MMIO_GAP_END, MMIO_GAP_START,
  MemoryLayoutError, MiB, PDE_START, PDPTE_START, PML4_START, VIRTIO_MMIO_START, ZERO_PAGE_START,
  contiguousRanges, lowRamEnd, memoryRegions,
} from './layout';

test('fixed addresses match the x86_64 layout Firecracker uses', () => {
  assert.equal(ZERO_PAGE_START, 0x7000);
  assert.equal(CMDLINE_START, 0x20000);
  assert.equal(CMDLINE_MAX_SIZE, 2048);
  assert.equal(BOOT_STACK_POINTER, 0x8ff0);
  assert.equal(GDT_START, 0x500);
  assert.equal(IDT_START, 0x520);
  assert.equal(PML4_START, 0x9000);
  assert.equal(PDPTE_START, 0xa000);
  assert.equal(PDE_START, 0xb000);
  assert.equal(EBDA_START, 0x9fc00);
  assert.equal(HIGH_MEMORY_START, 0x100000);
  assert.equal(IOAPIC_START, 0xfec00000);
  assert.equal(LAPIC_START, 0xfee00000);
  assert.equal(MMIO_GAP_START, 0xc000_0000);
  assert.equal(MMIO_GAP_END, 0x1_0000_0000);
  assert.equal(BOOT_TIMER_START, 0xc000_0000);
  assert.equal(VIRTIO_MMIO_START, 0xc000_1000);
});

test('boot structures do not overlap each other', () => {
  const areas: Array<[string, number, number]> = [
    ['gdt', GDT_START, GDT_START + 32],
    ['idt', IDT_START, IDT_START + 8],
    ['zero page', ZERO_PAGE_START, ZERO_PAGE_START + 4096],
    ['pml4', PML4_START, PML4_START + 4096],
    ['pdpte', PDPTE_START, PDPTE_START + 4096],
    ['pde', PDE_START, PDE_START + 4096],
    ['cmdline', CMDLINE_START, CMDLINE_START + CMDLINE_MAX_SIZE],
    ['ebda', EBDA_START, 0xa0000],
  ];
  for (const [a, s1, e1] of areas) {
    for (const [b, s2, e2] of areas) {
      if (a !== b) assert.ok(e1 <= s2 || e2 <= s1, `${a} overlaps ${b}`);
    }
  }
  // The stack grows down from 0x8ff0 inside the page above the zero page.
  assert.ok(BOOT_STACK_POINTER > ZERO_PAGE_START + 4096 && BOOT_STACK_POINTER < PML4_START);
});

test('small guest: one region from 0', () => {
  assert.deepEqual(memoryRegions(128 * MiB), [{ start: 0, size: 128 * MiB }]);
});

test('exactly 3 GiB fills low RAM up to the gap', () => {
  const r = memoryRegions(3 * GiB);
  assert.deepEqual(r, [{ start: 0, size: 2 * GiB }, { start: 2 * GiB, size: 1 * GiB }]);
  assert.equal(lowRamEnd(r), MMIO_GAP_START);
});

test('more than 3 GiB continues above 4 GiB, split into pieces of at most 2 GiB', () => {
  const r = memoryRegions(8 * GiB);
  assert.deepEqual(r, [
    { start: 0, size: 2 * GiB },
    { start: 2 * GiB, size: 1 * GiB },
    { start: 4 * GiB, size: 2 * GiB },
    { start: 6 * GiB, size: 2 * GiB },
    { start: 8 * GiB, size: 1 * GiB },
  ]);
  assert.ok(r.every((x) => x.size <= MAX_REGION_SIZE));
  assert.equal(r.reduce((n, x) => n + x.size, 0), 8 * GiB);
  assert.ok(r.every((x) => x.start + x.size <= MMIO_GAP_START || x.start >= MMIO_GAP_END), 'nothing in the MMIO gap');
  assert.deepEqual(contiguousRanges(r), [{ start: 0, end: 3 * GiB }, { start: 4 * GiB, end: 9 * GiB }]);
});

test('invalid sizes are refused with a MemoryLayoutError', () => {
  assert.throws(() => memoryRegions(0), MemoryLayoutError);
  assert.throws(() => memoryRegions(-4096), MemoryLayoutError);
  assert.throws(() => memoryRegions(4097), /multiple of the 4 KiB page size/);
});
