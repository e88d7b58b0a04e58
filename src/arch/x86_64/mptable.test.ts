import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory } from '../../memory/guest-memory';
import { MiB } from './layout';
import { MPTABLE_MAX_VCPUS, MpTableError, buildMpTable, checksum8, mpTableSize, writeMpTable } from './mptable';

interface Parsed {
  physptr: number;
  entries: Array<{ type: number; bytes: Buffer }>;
  lapic: number;
  oem: string;
}

/** Parse the tables back the way a guest would: floating pointer, then the header it points to. */
function parse(mem: GuestMemory, at: number): Parsed {
  const fp = mem.read(at, 16);
  assert.equal(fp.toString('latin1', 0, 4), '_MP_');
  assert.equal(fp[8], 1, 'length: one paragraph');
  assert.equal(fp[9], 4, 'spec 1.4');
  assert.equal(checksum8(fp), 0, 'floating pointer checksum');
  assert.equal(fp[11], 0, 'feature byte 1: config table present');
  const physptr = fp.readUInt32LE(4);
  const hdr = mem.read(physptr, 44);
  assert.equal(hdr.toString('latin1', 0, 4), 'PCMP');
  const len = hdr.readUInt16LE(4);
  assert.equal(hdr[6], 4);
  const table = mem.read(physptr, len);
  assert.equal(checksum8(table), 0, 'configuration table checksum');
  assert.equal(hdr.readUInt16LE(40), 0, 'no extended table');
  const count = hdr.readUInt16LE(34);
  const entries: Parsed['entries'] = [];
  let off = 44;
  for (let i = 0; i < count; i++) {
    const type = table[off];
    const size = type === 0 ? 20 : 8;
    entries.push({ type, bytes: table.subarray(off, off + size) });
    off += size;
  }
  assert.equal(off, len, 'entries fill the base table exactly');
  return { physptr, entries, lapic: hdr.readUInt32LE(36), oem: hdr.toString('latin1', 8, 16) };
}

test('MP table for 4 vCPUs parses back with correct checksums and entries', () => {
  const mem = GuestMemory.fromLayout([{ start: 0, size: 1 * MiB }]);
  const { address, size } = writeMpTable(mem, 4);
  assert.equal(address, 0x9fc00);
  assert.equal(size, mpTableSize(4));
  const p = parse(mem, 0x9fc00);
  assert.equal(p.physptr, 0x9fc10);
  assert.equal(p.lapic, 0xfee00000);
  assert.equal(p.oem, 'SPARKLER');

  const procs = p.entries.filter((x) => x.type === 0);
  assert.equal(procs.length, 4);
  procs.forEach((x, i) => {
    assert.equal(x.bytes[1], i, 'APIC id = vCPU index');
    assert.equal(x.bytes[3], i === 0 ? 3 : 1, 'enabled, BSP flag on vCPU 0 only');
    assert.equal(x.bytes.readUInt32LE(8) & 0x200, 0x200, 'APIC feature flag');
  });
  const buses = p.entries.filter((x) => x.type === 1);
  assert.equal(buses.length, 1);
  assert.equal(buses[0].bytes.toString('latin1', 2, 8), 'ISA   ');
  const ioapics = p.entries.filter((x) => x.type === 2);
  assert.equal(ioapics.length, 1);
  assert.equal(ioapics[0].bytes[1], 5, 'IOAPIC id = vcpuCount + 1');
  assert.equal(ioapics[0].bytes[3], 1, 'enabled');
  assert.equal(ioapics[0].bytes.readUInt32LE(4), 0xfec00000);
  const ints = p.entries.filter((x) => x.type === 3);
  assert.equal(ints.length, 24);
  ints.forEach((x, irq) => {
    assert.equal(x.bytes[1], 0, 'INT');
    assert.equal(x.bytes[4], buses[0].bytes[1], 'from the ISA bus');
    assert.equal(x.bytes[5], irq);
    assert.equal(x.bytes[6], 5);
    assert.equal(x.bytes[7], irq, 'IRQ n -> pin n');
  });
  const lints = p.entries.filter((x) => x.type === 4);
  assert.equal(lints.length, 2);
  assert.deepEqual([lints[0].bytes[1], lints[0].bytes[6], lints[0].bytes[7]], [3, 0, 0], 'ExtINT -> BSP LINT0');
  assert.deepEqual([lints[1].bytes[1], lints[1].bytes[6], lints[1].bytes[7]], [1, 0xff, 1], 'NMI -> all LINT1');
  // Entries are ordered by type, as the spec asks (processors first).
  const types = p.entries.map((x) => x.type);
  assert.deepEqual(types, [...types].sort((a, b) => a - b));
});

test('MP table stays inside the EBDA kilobyte, up to the vCPU limit', () => {
  assert.equal(MPTABLE_MAX_VCPUS, 37);
  assert.ok(mpTableSize(MPTABLE_MAX_VCPUS) <= 0x400);
  assert.ok(mpTableSize(MPTABLE_MAX_VCPUS + 1) > 0x400);
  const mem = GuestMemory.fromLayout([{ start: 0, size: 1 * MiB }]);
  writeMpTable(mem, MPTABLE_MAX_VCPUS);
  assert.equal(parse(mem, 0x9fc00).entries.filter((x) => x.type === 0).length, 37);
  assert.throws(() => buildMpTable(MPTABLE_MAX_VCPUS + 1), (err: unknown) =>
    err instanceof MpTableError && /at most 37 vCPUs fit/.test(err.message) && err.code === 'EMPTABLE');
  assert.throws(() => buildMpTable(0), MpTableError);
});

test('a single vCPU', () => {
  const mem = GuestMemory.fromLayout([{ start: 0, size: 1 * MiB }]);
  mem.write(0x9fc00, Buffer.alloc(0x400, 0xee));
  writeMpTable(mem, 1);
  const p = parse(mem, 0x9fc00);
  assert.equal(p.entries.filter((x) => x.type === 2)[0].bytes[1], 2);
  assert.equal(mem.readU8(0x9ffff), 0, 'the rest of the EBDA is cleared');
});
