/**
 * The tables as a guest finds them: written into a Buffer-backed GuestMemory, then read back
 * from the RSDP (by address and by scanning 0xE0000-0xFFFFF), every checksum and length
 * verified, every XSDT entry followed, the MADT counted per vCPU count and the DSDT decoded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory } from '../../../memory/guest-memory';
import { loadKernel } from '../../../loader/kernel';
import { makeElf } from '../../../loader/fixtures';
import { mmioSlotAddress, mmioSlotGsi, VIRTIO_MMIO_MAX_SLOTS } from '../../../devices/virtio/mmio-slots';
import { configureBoot } from '../boot';
import { readGenerationId, VMGENID_ADDRESS, VMGENID_GSI, writeGenerationId } from './vmgenid';
import { BP, parseE820 } from '../boot-params';
import { E820_RAM, E820_RESERVED } from '../e820';
import {
  BOOT_STACK_POINTER, CMDLINE_MAX_SIZE, CMDLINE_START, EBDA_START, GDT_START, HIGH_MEMORY_START, IDT_START,
  LOW_MEMORY_END, MiB, PDE_START, PDPTE_START, PML4_START, ZERO_PAGE_START, memoryRegions,
} from '../layout';
import { buildMpTable, MPTABLE_MAX_VCPUS, MPTABLE_START, MPTABLE_MAX_SIZE } from '../mptable';
import {
  ACPI_TABLES_END, ACPI_TABLES_SIZE, ACPI_TABLES_START, AcpiError, buildAcpiTables, isS5Request, RSDP_ADDRESS,
  S5_SLEEP_CONTROL_VALUE, SLEEP_CONTROL_PORT, SLEEP_STATUS_PORT, writeAcpiTables,
} from './index';
import { buildFadt, FADT_FLAGS, FADT_OFFSETS, FADT_SIZE, IAPC_BOOT_ARCH } from './fadt';
import { AmlContainer, AmlNode, AmlValue, decodeAml, readAcpiTables, scanForRsdp, SdtInfo } from './read';
import { buildXsdt, xsdtSizeFor } from './rsdp';
import { ACPI_CREATOR_ID, ACPI_OEM_ID, ACPI_OEM_TABLE_ID, checksum8 } from './sdt';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const lowMem = () => GuestMemory.fromLayout([{ start: 0, size: 2 * MiB }]);
const slots = (n: number) => Array.from({ length: n }, (_, i) => ({ address: mmioSlotAddress(i), gsi: mmioSlotGsi(i) }));

function tablesOf(mem: GuestMemory, rsdp: number) {
  const r = readAcpiTables(mem, rsdp);
  const get = (sig: string): SdtInfo => {
    const t = r.tables.get(sig);
    assert.ok(t, `${sig} present`);
    return t;
  };
  return { ...r, get };
}

test('the RSDP is at 0xE0000, revision 2, both checksums right, and a scan of 0xE0000-0xFFFFF finds it', () => {
  const mem = lowMem();
  const rsdp = writeAcpiTables(mem, { vcpuCount: 1, virtioDevices: [] });
  assert.equal(rsdp, 0xe0000);
  assert.equal(rsdp, RSDP_ADDRESS);
  const b = mem.read(rsdp, 36);
  assert.equal(b.toString('latin1', 0, 8), 'RSD PTR ');
  assert.equal(checksum8(b.subarray(0, 20)), 0, 'ACPI 1.0 checksum over the first 20 bytes');
  assert.equal(checksum8(b), 0, 'extended checksum over all 36 bytes');
  assert.equal(b.toString('latin1', 9, 15), 'SPRKLR');
  assert.equal(b[15], 2);
  assert.equal(b.readUInt32LE(16), 0, 'no RSDT');
  assert.equal(b.readUInt32LE(20), 36);
  assert.equal(rsdp % 16, 0);
  assert.equal(scanForRsdp(mem), rsdp);
});

test('the header IDs are printable ASCII that fit their fields; the size constants match the built tables', () => {
  for (const [id, max] of [[ACPI_OEM_ID, 6], [ACPI_OEM_TABLE_ID, 8], [ACPI_CREATOR_ID, 4]] as const) {
    assert.match(id, /^[\x20-\x7e]+$/);
    assert.ok(id.length <= max, `${id} fits ${max} bytes`);
  }
  assert.equal(buildFadt(0x1234).length, FADT_SIZE);
  assert.equal(buildXsdt([1, 2]).length, xsdtSizeFor(2));
});

test('XSDT entries point at a valid FADT and MADT; the FADT points at the DSDT; all headers say SPRKLR', () => {
  const mem = lowMem();
  const rsdp = writeAcpiTables(mem, { vcpuCount: 2, virtioDevices: slots(3) });
  const { rsdp: info, tables, xsdtEntries, get } = tablesOf(mem, rsdp);
  assert.equal(info.revision, 2);
  assert.deepEqual([...tables.keys()].sort(), ['APIC', 'DSDT', 'FACP', 'XSDT']);
  assert.deepEqual(xsdtEntries.map((a) => mem.read(a, 4).toString('latin1')), ['FACP', 'APIC']);
  const revisions: Record<string, number> = { XSDT: 1, FACP: 6, APIC: 5, DSDT: 2 };
  for (const t of tables.values()) {
    assert.equal(t.oemId, 'SPRKLR', t.signature);
    assert.equal(t.oemTableId, 'SPARKLER', t.signature);
    assert.equal(t.revision, revisions[t.signature], t.signature);
    assert.equal(checksum8(t.bytes), 0, t.signature);
    assert.ok(t.address >= ACPI_TABLES_START && t.address + t.length <= ACPI_TABLES_END, `${t.signature} inside the ACPI area`);
    assert.equal(t.address % 16, 0, `${t.signature} 16-byte aligned`);
  }
  // No two structures overlap.
  const spans = [[rsdp, 36], ...[...tables.values()].map((t) => [t.address, t.length])].sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) assert.ok(spans[i - 1][0] + spans[i - 1][1] <= spans[i][0]);
  assert.equal(get('XSDT').length, 36 + 16);
});

test('FADT: hardware-reduced, 8042 but no VGA or CMOS RTC, reset through 0x64, sleep registers at 0x600/0x601', () => {
  const mem = lowMem();
  const { get } = tablesOf(mem, writeAcpiTables(mem, { vcpuCount: 1, virtioDevices: [] }));
  const f = get('FACP').bytes;
  const dsdt = get('DSDT').address;
  assert.equal(f.length, FADT_SIZE);
  assert.equal(f.readUInt32LE(FADT_OFFSETS.FIRMWARE_CTRL), 0, 'no FACS');
  assert.equal(f.readBigUInt64LE(FADT_OFFSETS.X_FIRMWARE_CTRL), 0n);
  assert.equal(f.readUInt32LE(FADT_OFFSETS.DSDT), dsdt);
  assert.equal(f.readBigUInt64LE(FADT_OFFSETS.X_DSDT), BigInt(dsdt));
  assert.equal(f.readUInt16LE(FADT_OFFSETS.SCI_INT), 0, 'no SCI');
  const flags = f.readUInt32LE(FADT_OFFSETS.FLAGS);
  assert.ok(flags & FADT_FLAGS.HW_REDUCED_ACPI);
  assert.ok(flags & FADT_FLAGS.RESET_REG_SUP);
  assert.equal(flags, 0x0010_0431);
  const boot = f.readUInt16LE(FADT_OFFSETS.IAPC_BOOT_ARCH);
  assert.ok(boot & IAPC_BOOT_ARCH.I8042);
  assert.ok(boot & IAPC_BOOT_ARCH.VGA_NOT_PRESENT);
  assert.ok(boot & IAPC_BOOT_ARCH.CMOS_RTC_NOT_PRESENT);
  assert.equal(boot & IAPC_BOOT_ARCH.MSI_NOT_SUPPORTED, 0);
  assert.equal(boot, 0x27);
  // No legacy fixed hardware: everything from SMI_CMD (48) to the end of the GPE1 base (94) is
  // zero, and so are the eight X_ register blocks (148..243).
  assert.ok(f.subarray(48, 95).every((x) => x === 0), 'SMI_CMD, PM1/PM2/PM timer/GPE blocks and lengths');
  assert.ok(f.subarray(FADT_OFFSETS.X_PM1A_EVT_BLK, FADT_OFFSETS.SLEEP_CONTROL_REG).every((x) => x === 0));
  // Generic Address Structures: SystemIO (1), 8 bits, offset 0, byte access (1), address.
  assert.deepEqual(f.subarray(FADT_OFFSETS.RESET_REG, FADT_OFFSETS.RESET_REG + 12), hex('01 08 00 01 64 00 00 00 00 00 00 00'));
  assert.equal(f[FADT_OFFSETS.RESET_VALUE], 0xfe);
  assert.deepEqual(f.subarray(FADT_OFFSETS.SLEEP_CONTROL_REG, FADT_OFFSETS.SLEEP_CONTROL_REG + 12), hex('01 08 00 01 00 06 00 00 00 00 00 00'));
  assert.deepEqual(f.subarray(FADT_OFFSETS.SLEEP_STATUS_REG, FADT_OFFSETS.SLEEP_STATUS_REG + 12), hex('01 08 00 01 01 06 00 00 00 00 00 00'));
  assert.equal(SLEEP_CONTROL_PORT, 0x600);
  assert.equal(SLEEP_STATUS_PORT, 0x601);
  assert.equal(f[FADT_OFFSETS.MINOR_REVISION], 3);
});

test('the S5 request a guest writes to the sleep control register', () => {
  assert.equal(S5_SLEEP_CONTROL_VALUE, 0x34); // SLP_EN (bit 5) | SLP_TYP 5 << 2
  assert.equal(isS5Request(0x34), true);
  assert.equal(isS5Request(0x34 | 0x80 | 0x03), true, 'other bits do not matter');
  assert.equal(isS5Request(0x14), false, 'SLP_TYP 5 without SLP_EN');
  assert.equal(isS5Request(0x20), false, 'SLP_EN with SLP_TYP 0');
  assert.equal(isS5Request(0x2c), false, 'SLP_TYP 3 (S3)');
  assert.equal(isS5Request(0x80), false, 'the WAK_STS write Linux makes to the status register first');
});

interface MadtEntry { type: number; bytes: Buffer }
function madtEntries(t: SdtInfo): MadtEntry[] {
  const out: MadtEntry[] = [];
  for (let off = 44; off < t.length;) {
    const len = t.bytes[off + 1];
    assert.ok(len >= 2 && off + len <= t.length, 'entry inside the table');
    out.push({ type: t.bytes[off], bytes: t.bytes.subarray(off, off + len) });
    off += len;
  }
  return out;
}

for (const vcpus of [1, 2, 4, MPTABLE_MAX_VCPUS]) {
  test(`MADT for ${vcpus} vCPU(s): a local APIC each, one I/O APIC matching the MP table, LINT1 NMI, no overrides`, () => {
    const mem = lowMem();
    const { get } = tablesOf(mem, writeAcpiTables(mem, { vcpuCount: vcpus, virtioDevices: [] }));
    const madt = get('APIC');
    assert.equal(madt.bytes.readUInt32LE(36), 0xfee0_0000, 'local APIC address');
    assert.equal(madt.bytes.readUInt32LE(40), 1, 'PCAT_COMPAT');
    const entries = madtEntries(madt);
    const lapics = entries.filter((e) => e.type === 0);
    assert.equal(lapics.length, vcpus);
    lapics.forEach((e, i) => {
      assert.equal(e.bytes.length, 8);
      assert.equal(e.bytes[2], i, 'processor UID');
      assert.equal(e.bytes[3], i, 'APIC id = vCPU index');
      assert.equal(e.bytes.readUInt32LE(4), 1, 'enabled');
    });
    const ioapics = entries.filter((e) => e.type === 1);
    assert.equal(ioapics.length, 1);
    const io = ioapics[0].bytes;
    assert.equal(io.length, 12);
    assert.equal(io.readUInt32LE(4), 0xfec0_0000);
    assert.equal(io.readUInt32LE(8), 0, 'GSI base');
    // The MP table's I/O APIC entry (after the processors and the bus entry) has the same id.
    const mp = buildMpTable(vcpus);
    const mpIoapic = mp.subarray(16 + 44 + 20 * vcpus + 8);
    assert.equal(mpIoapic[0], 2, 'MP I/O APIC entry');
    assert.equal(io[2], mpIoapic[1], 'same I/O APIC id as the MP table');
    assert.equal(io[2], vcpus + 1);
    assert.equal(io.readUInt32LE(4), mpIoapic.readUInt32LE(4), 'same address as the MP table');
    const nmis = entries.filter((e) => e.type === 4);
    assert.equal(nmis.length, 1);
    assert.deepEqual(nmis[0].bytes, hex('04 06 ff 00 00 01'));
    assert.equal(entries.filter((e) => e.type === 2).length, 0, 'no interrupt source overrides');
    assert.equal(entries.length, vcpus + 2);
    assert.equal(madt.length, 44 + 8 * vcpus + 12 + 6);
  });
}

function findName(children: AmlNode[], n: string): AmlValue {
  const node = children.find((c) => c.kind === 'name' && c.name === n);
  assert.ok(node && node.kind === 'name', `${n} present`);
  return node.value;
}

function dsdtDevices(mem: GuestMemory, rsdp: number) {
  const { get } = tablesOf(mem, rsdp);
  const aml = decodeAml(get('DSDT').bytes.subarray(36));
  const sb = aml.find((n) => n.kind === 'scope' && n.name === '\\_SB_');
  assert.ok(sb && sb.kind === 'scope');
  const devices = sb.children.filter((c): c is AmlContainer => c.kind === 'device');
  return { aml, devices };
}

/** The _CRS bytes of a virtio-mmio device, written out from the spec's descriptor layouts. */
function expectedVirtioCrs(address: number, gsi: number): Buffer {
  const m = Buffer.alloc(4);
  m.writeUInt32LE(address);
  const g = Buffer.alloc(4);
  g.writeUInt32LE(gsi);
  return Buffer.concat([hex('86 09 00 01'), m, hex('00 10 00 00'), hex('89 06 00 03 01'), g, hex('79 00')]);
}

for (const count of [0, 1, 3, VIRTIO_MMIO_MAX_SLOTS]) {
  test(`DSDT with ${count} virtio-mmio device(s): one LNRO0005 device per slot with its window and edge/high GSI`, () => {
    const mem = lowMem();
    const devs = slots(count);
    const { devices } = dsdtDevices(mem, writeAcpiTables(mem, { vcpuCount: 1, virtioDevices: devs }));
    const virtio = devices.filter((d) => {
      const hid = findName(d.children, '_HID');
      return hid.kind === 'string' && hid.value === 'LNRO0005';
    });
    assert.equal(virtio.length, count);
    virtio.forEach((d, i) => {
      assert.equal(d.name, `V${String(i).padStart(3, '0')}`);
      assert.deepEqual(findName(d.children, '_UID'), { kind: 'integer', value: BigInt(i) });
      const crs = findName(d.children, '_CRS');
      assert.ok(crs.kind === 'buffer');
      assert.deepEqual(crs.value, expectedVirtioCrs(devs[i].address, devs[i].gsi), `device ${i} _CRS`);
    });
  });
}

test('DSDT: COM1 (PNP0501, 0x3f8-0x3ff, IRQ 4), the i8042 (PNP0303, 0x60 and 0x64, IRQ 1) and \\_S5', () => {
  const mem = lowMem();
  const { aml, devices } = dsdtDevices(mem, writeAcpiTables(mem, { vcpuCount: 1, virtioDevices: slots(1) }));
  const byHid = (id: number) => devices.find((d) => {
    const hid = findName(d.children, '_HID');
    return hid.kind === 'integer' && hid.value === BigInt(id);
  });
  const com1 = byHid(0x0105d041); // EISAID("PNP0501")
  assert.ok(com1);
  assert.deepEqual(findName(com1.children, '_CRS'), { kind: 'buffer', value: hex('47 01 f8 03 f8 03 01 08  22 10 00  79 00') });
  const kbd = byHid(0x0303d041); // EISAID("PNP0303")
  assert.ok(kbd);
  assert.deepEqual(findName(kbd.children, '_CRS'), { kind: 'buffer', value: hex('47 01 60 00 60 00 01 01  47 01 64 00 64 00 01 01  22 02 00  79 00') });
  const s5 = aml.find((n) => n.kind === 'name' && n.name === '\\_S5_');
  assert.ok(s5 && s5.kind === 'name');
  assert.deepEqual(s5.value, { kind: 'package', elements: [{ kind: 'integer', value: 5n }, { kind: 'integer', value: 0n }] });
});

test('the ACPI area is below 1 MiB, clear of the MP table and every fixed boot structure', () => {
  assert.equal(ACPI_TABLES_START, 0xe0000);
  assert.equal(ACPI_TABLES_END, HIGH_MEMORY_START);
  assert.ok(ACPI_TABLES_START >= LOW_MEMORY_END, 'in the legacy hole, which e820 does not give out as RAM');
  const used: Array<[string, number, number]> = [
    ['GDT', GDT_START, 0x20], ['IDT', IDT_START, 8], ['zero page', ZERO_PAGE_START, 0x1000],
    ['stack', BOOT_STACK_POINTER - 0x1000, 0x1000], ['PML4', PML4_START, 0x1000], ['PDPTE', PDPTE_START, 0x1000],
    ['PDE', PDE_START, 0x1000], ['cmdline', CMDLINE_START, CMDLINE_MAX_SIZE], ['MP table', MPTABLE_START, MPTABLE_MAX_SIZE],
    ['EBDA', EBDA_START, LOW_MEMORY_END - EBDA_START], ['kernel', HIGH_MEMORY_START, 1],
  ];
  for (const [what, start, size] of used) {
    assert.ok(start + size <= ACPI_TABLES_START || start >= ACPI_TABLES_END, `${what} does not overlap`);
  }
  // The largest configuration fits with room to spare.
  const t = buildAcpiTables({ vcpuCount: MPTABLE_MAX_VCPUS, virtioDevices: slots(VIRTIO_MMIO_MAX_SLOTS) });
  assert.ok(t.bytes.length < ACPI_TABLES_SIZE / 16, `${t.bytes.length} bytes`);
});

test('writing clears the whole area, so an old RSDP cannot be found by a scan', () => {
  const mem = lowMem();
  mem.write(ACPI_TABLES_START, Buffer.alloc(ACPI_TABLES_SIZE, 0xcc));
  // A stale, valid-looking RSDP high in the area.
  const stale = buildAcpiTables({ vcpuCount: 1, virtioDevices: [] }, 0xf0000);
  mem.write(0xf0000, stale.bytes);
  const rsdp = writeAcpiTables(mem, { vcpuCount: 1, virtioDevices: [] });
  const t = buildAcpiTables({ vcpuCount: 1, virtioDevices: [] });
  assert.deepEqual(mem.read(ACPI_TABLES_START, t.bytes.length), t.bytes);
  const afterTables = ACPI_TABLES_START + t.bytes.length;
  assert.ok(mem.read(afterTables, VMGENID_ADDRESS - afterTables).every((b) => b === 0));
  assert.ok(mem.read(VMGENID_ADDRESS + 16, ACPI_TABLES_END - VMGENID_ADDRESS - 16).every((b) => b === 0));
  assert.equal(scanForRsdp(mem, rsdp + 16), undefined, 'nothing but ours');
});

test('DSDT: VGEN (VMGENCTR) points ADDR at the generation ID; GED0 (ACPI0013) on GSI 3 has an _EVT method', () => {
  const mem = lowMem();
  const { devices } = dsdtDevices(mem, writeAcpiTables(mem, { vcpuCount: 1, virtioDevices: slots(2) }));
  const vgen = devices.find((d) => d.name === 'VGEN');
  assert.ok(vgen);
  assert.deepEqual(findName(vgen.children, '_HID'), { kind: 'string', value: 'VMGENCTR' });
  assert.deepEqual(findName(vgen.children, '_CID'), { kind: 'string', value: 'VM_Gen_Counter' });
  assert.deepEqual(findName(vgen.children, 'ADDR'), { kind: 'package', elements: [{ kind: 'integer', value: BigInt(VMGENID_ADDRESS) }, { kind: 'integer', value: 0n }] });
  const ged = devices.find((d) => d.name === 'GED0');
  assert.ok(ged);
  assert.deepEqual(findName(ged.children, '_HID'), { kind: 'string', value: 'ACPI0013' });
  const crs = findName(ged.children, '_CRS');
  const gsi = Buffer.alloc(4);
  gsi.writeUInt32LE(VMGENID_GSI);
  assert.deepEqual(crs, { kind: 'buffer', value: Buffer.concat([hex('89 06 00 03 01'), gsi, hex('79 00')]) }, 'Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { 3 }');
  const evt = ged.children.find((c) => c.kind === 'method' && c.name === '_EVT');
  assert.ok(evt && evt.kind === 'method');
  assert.equal(evt.flags, 0x09, 'one argument, serialized');
  // If (LEqual (Arg0, 3)) { Notify (\_SB.VGEN, 0x80) }
  assert.equal(evt.body.toString('hex'), hex('a0 12 93 68 0a 03 86 5c 2e 5f 53 42 5f 56 47 45 4e 0a 80').toString('hex'));
});

test('each write of the tables puts a fresh random VM generation ID where the DSDT\'s VGEN.ADDR points', () => {
  const mem = lowMem();
  writeAcpiTables(mem, { vcpuCount: 1, virtioDevices: [] });
  const first = readGenerationId(mem);
  assert.ok(first.some((b) => b !== 0), 'not zero');
  writeAcpiTables(mem, { vcpuCount: 1, virtioDevices: [] });
  assert.notDeepEqual(readGenerationId(mem), first);
  const id = Buffer.alloc(16, 0x5a);
  writeGenerationId(mem, id);
  assert.deepEqual(readGenerationId(mem), id);
  assert.equal(VMGENID_GSI, 3, 'ISA IRQ 3: not the serial port, the i8042 or a virtio slot');
});

test('buildAcpiTables is position-independent: tables built for another base read back there', () => {
  const mem = lowMem();
  const t = buildAcpiTables({ vcpuCount: 3, virtioDevices: slots(2) }, 0x1_0000);
  mem.write(0x1_0000, t.bytes);
  const { tables } = readAcpiTables(mem, t.rsdp);
  assert.equal(tables.get('DSDT')?.address, t.dsdt);
  assert.equal(tables.get('APIC')?.address, t.madt);
});

test('bad configurations are refused with a sentence', () => {
  const mem = lowMem();
  const w = (vcpuCount: number, virtioDevices: Array<{ address: number; gsi: number; size?: number }>) => () => writeAcpiTables(mem, { vcpuCount, virtioDevices });
  assert.throws(w(0, []), /1 to 253 vCPUs, not 0/);
  assert.throws(w(1, [{ address: 0xc0001000, gsi: 24 }]), /GSI 24 is not an I\/O APIC pin/);
  assert.throws(w(1, [{ address: 0xc0001000, gsi: 4 }]), /belongs to the serial port/);
  assert.throws(w(1, [{ address: 0xc0001000, gsi: 1 }]), /belongs to the i8042/);
  assert.throws(w(1, [{ address: 0xffff_f800, gsi: 5 }]), /must lie below 4 GiB/);
  assert.throws(w(1, [{ address: 0, gsi: 5 }]), /must lie below 4 GiB/);
  assert.throws(w(1, [{ address: 0xc0001000, gsi: 5 }, { address: 0xc0001800, gsi: 6 }]), /device 1: its window at 0xc0001800 overlaps device 0's/);
  assert.throws(w(1, [{ address: 0xc0001000, gsi: 5 }, { address: 0xc0002000, gsi: 5 }]), /GSI 5 is used twice/);
  assert.throws(w(1, [{ address: 0xc0001000, gsi: 5, size: 0 }]), /positive whole number/);
  // Windows smaller than a page (QEMU's are 0x200 apart) are fine when they do not overlap.
  assert.doesNotThrow(w(1, [{ address: 0xfeb00e00, gsi: 12, size: 0x200 }, { address: 0xfeb01000, gsi: 13, size: 0x200 }]));
  assert.throws(() => writeAcpiTables(GuestMemory.fromLayout([{ start: 0, size: 0x80000 }]), { vcpuCount: 1, virtioDevices: [] }),
    (e: unknown) => e instanceof AcpiError && /at least 1 MiB/.test(e.message));
});

test('configureBoot with writeAcpiTables: acpi_rsdp_addr in the zero page, the ACPI area reserved in e820', () => {
  const mem = GuestMemory.fromLayout(memoryRegions(64 * MiB));
  const kernel = loadKernel(mem, makeElf([{ paddr: 0x1000000, data: Buffer.from('k') }]));
  const setup = configureBoot(mem, {
    kernel, cmdline: 'console=ttyS0', vcpuCount: 2,
    writeAcpiTables: (m) => writeAcpiTables(m, { vcpuCount: 2, virtioDevices: slots(2) }),
  });
  assert.equal(setup.acpiRsdp, 0xe0000);
  const zp = mem.read(ZERO_PAGE_START, 4096);
  assert.equal(zp.readBigUInt64LE(BP.acpiRsdpAddr), 0xe0000n);
  const e820 = parseE820(zp);
  assert.deepEqual(e820, setup.e820);
  assert.deepEqual(e820, [
    { addr: 0, size: 0x9fc00, type: E820_RAM },
    { addr: 0x9fc00, size: 0x400, type: E820_RESERVED },
    { addr: 0xe0000, size: 0x20000, type: E820_RESERVED },
    { addr: 0x100000, size: 64 * MiB - 0x100000, type: E820_RAM },
  ]);
  // The MP table written before the ACPI tables is intact, and the tables read back.
  assert.equal(mem.read(MPTABLE_START, 4).toString('latin1'), '_MP_');
  assert.equal(readAcpiTables(mem, setup.acpiRsdp).xsdtEntries.length, 2);
});

test('configureBoot without ACPI keeps the e820 map as it was', () => {
  const mem = GuestMemory.fromLayout(memoryRegions(64 * MiB));
  const kernel = loadKernel(mem, makeElf([{ paddr: 0x1000000, data: Buffer.from('k') }]));
  const setup = configureBoot(mem, { kernel, cmdline: '', vcpuCount: 1 });
  assert.equal(setup.acpiRsdp, undefined);
  assert.ok(!setup.e820.some((e) => e.addr === 0xe0000));
});
