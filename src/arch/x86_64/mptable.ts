/**
 * The Intel MultiProcessor Specification 1.4 tables, placed in the EBDA (0x9fc00, the last KiB
 * of conventional memory, one of the places Linux's MP scan looks): the MP floating pointer
 * (section 4.1), the configuration table header (4.2) and its base entries (4.3): one processor
 * per vCPU, the ISA bus, the IOAPIC, one I/O interrupt entry per IOAPIC pin and the two local
 * interrupt entries of a virtual-wire PC (ExtINT on LINT0, NMI on LINT1).
 */
import { SparklerError } from '../../errors';
import { GuestMemory } from '../../memory/guest-memory';
import { EBDA_START, IOAPIC_START, LAPIC_START, LOW_MEMORY_END } from './layout';

export const MPTABLE_START = EBDA_START;
/** Space for the tables: from the EBDA to the end of conventional memory. */
export const MPTABLE_MAX_SIZE = LOW_MEMORY_END - EBDA_START;

export const MP_FLOATING_POINTER_SIZE = 16;
export const MP_CONFIG_HEADER_SIZE = 44;
export const MP_PROCESSOR_ENTRY_SIZE = 20;
export const MP_SMALL_ENTRY_SIZE = 8;
export const MP_SPEC_REV_1_4 = 4;

export const MP_ENTRY_PROCESSOR = 0;
export const MP_ENTRY_BUS = 1;
export const MP_ENTRY_IOAPIC = 2;
export const MP_ENTRY_IO_INTERRUPT = 3;
export const MP_ENTRY_LOCAL_INTERRUPT = 4;

/** Interrupt types of I/O and local interrupt entries (table 4-9 / 4-10). */
export const MP_INT = 0;
export const MP_NMI = 1;
export const MP_SMI = 2;
export const MP_EXTINT = 3;

export const MP_CPU_ENABLED = 0x1;
export const MP_CPU_BOOT_PROCESSOR = 0x2;
export const MP_IOAPIC_ENABLED = 0x1;
/** Local APIC version of a modern integrated xAPIC. */
export const MP_APIC_VERSION = 0x14;
/** KVM's in-kernel IOAPIC reports version 0x11 in its version register. */
export const MP_IOAPIC_VERSION = 0x11;
/** CPU signature (family 6) and feature flags (FPU | APIC) for processor entries, as Firecracker. */
export const MP_CPU_SIGNATURE = 0x600;
export const MP_CPU_FEATURES = 0x201;
export const MP_BUS_ID_ISA = 0;
export const IOAPIC_PINS = 24;
/** Destination local APIC id meaning "all local APICs". */
export const MP_ALL_APICS = 0xff;

export const MP_OEM_ID = 'SPARKLER';
export const MP_PRODUCT_ID = 'MICROVM     ';

export class MpTableError extends SparklerError {
  constructor(message: string) {
    super('EMPTABLE', message);
    this.name = 'MpTableError';
  }
}

/** The IOAPIC's id in the MP table: the first id after the vCPUs' APIC ids and one spare, as Firecracker. */
export function ioapicId(vcpuCount: number): number {
  return vcpuCount + 1;
}

export function mpTableSize(vcpuCount: number): number {
  return MP_FLOATING_POINTER_SIZE + MP_CONFIG_HEADER_SIZE + vcpuCount * MP_PROCESSOR_ENTRY_SIZE
    + MP_SMALL_ENTRY_SIZE * (1 /* bus */ + 1 /* ioapic */ + IOAPIC_PINS + 2 /* LINT0, LINT1 */);
}

/** The most vCPUs whose MP table fits between the EBDA and 0xa0000. */
export const MPTABLE_MAX_VCPUS = Math.floor(
  (MPTABLE_MAX_SIZE - mpTableSize(0)) / MP_PROCESSOR_ENTRY_SIZE,
);

/** The byte sum mod 256 (MP and ACPI tables sum to 0). An index loop: a for-of iterator is slow in cold code. */
export function checksum8(buf: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i++) sum += buf[i];
  return sum & 0xff;
}

/** Build the MP tables for `vcpuCount` vCPUs as they appear at guest-physical `base`. Pure. */
export function buildMpTable(vcpuCount: number, base: number = MPTABLE_START): Buffer {
  if (!Number.isInteger(vcpuCount) || vcpuCount < 1) {
    throw new MpTableError(`The MP table needs at least one vCPU, not ${vcpuCount}.`);
  }
  const size = mpTableSize(vcpuCount);
  if (vcpuCount > MPTABLE_MAX_VCPUS) {
    throw new MpTableError(
      `The MP table for ${vcpuCount} vCPUs needs ${size} bytes but only ${MPTABLE_MAX_SIZE} bytes are free at 0x${MPTABLE_START.toString(16)}; at most ${MPTABLE_MAX_VCPUS} vCPUs fit.`,
    );
  }
  const buf = Buffer.alloc(size);
  const configAddr = base + MP_FLOATING_POINTER_SIZE;

  // 4.1 floating pointer: "_MP_", physical address of the config table, length in 16-byte
  // paragraphs, spec revision, checksum, feature bytes (byte 1 = 0: a config table is present;
  // byte 2 bit 7 clear: no IMCR, virtual wire mode).
  buf.write('_MP_', 0, 'latin1');
  buf.writeUInt32LE(configAddr, 4);
  buf[8] = 1;
  buf[9] = MP_SPEC_REV_1_4;

  // Entries after the 44-byte header.
  const c = MP_FLOATING_POINTER_SIZE;
  let off = c + MP_CONFIG_HEADER_SIZE;
  let entries = 0;
  for (let cpu = 0; cpu < vcpuCount; cpu++) {
    // 4.3.1 processor entry: type, local APIC id, version, flags (EN, BP), signature, features, reserved.
    buf[off] = MP_ENTRY_PROCESSOR;
    buf[off + 1] = cpu;
    buf[off + 2] = MP_APIC_VERSION;
    buf[off + 3] = MP_CPU_ENABLED | (cpu === 0 ? MP_CPU_BOOT_PROCESSOR : 0);
    buf.writeUInt32LE(MP_CPU_SIGNATURE, off + 4);
    buf.writeUInt32LE(MP_CPU_FEATURES, off + 8);
    off += MP_PROCESSOR_ENTRY_SIZE;
    entries++;
  }
  // 4.3.2 bus entry: type, bus id, 6-byte bus type string.
  buf[off] = MP_ENTRY_BUS;
  buf[off + 1] = MP_BUS_ID_ISA;
  buf.write('ISA   ', off + 2, 'latin1');
  off += MP_SMALL_ENTRY_SIZE;
  entries++;
  // 4.3.3 I/O APIC entry: type, id, version, flags (EN), address.
  const ioapic = ioapicId(vcpuCount);
  buf[off] = MP_ENTRY_IOAPIC;
  buf[off + 1] = ioapic;
  buf[off + 2] = MP_IOAPIC_VERSION;
  buf[off + 3] = MP_IOAPIC_ENABLED;
  buf.writeUInt32LE(IOAPIC_START, off + 4);
  off += MP_SMALL_ENTRY_SIZE;
  entries++;
  // 4.3.4 I/O interrupt entries: type, interrupt type, flags (0 = conforms to the bus),
  // source bus, source bus IRQ, destination IOAPIC id, destination pin. ISA IRQ n -> pin n,
  // matching KVM's default GSI routing.
  for (let irq = 0; irq < IOAPIC_PINS; irq++) {
    buf[off] = MP_ENTRY_IO_INTERRUPT;
    buf[off + 1] = MP_INT;
    buf.writeUInt16LE(0, off + 2);
    buf[off + 4] = MP_BUS_ID_ISA;
    buf[off + 5] = irq;
    buf[off + 6] = ioapic;
    buf[off + 7] = irq;
    off += MP_SMALL_ENTRY_SIZE;
    entries++;
  }
  // 4.3.5 local interrupt entries: type, interrupt type, flags, source bus, source bus IRQ,
  // destination local APIC id, destination LINTIN#. ExtINT -> BSP LINT0, NMI -> all LINT1.
  const lints: Array<[number, number, number]> = [[MP_EXTINT, 0, 0], [MP_NMI, MP_ALL_APICS, 1]];
  for (const [type, apic, lint] of lints) {
    buf[off] = MP_ENTRY_LOCAL_INTERRUPT;
    buf[off + 1] = type;
    buf.writeUInt16LE(0, off + 2);
    buf[off + 4] = MP_BUS_ID_ISA;
    buf[off + 5] = 0;
    buf[off + 6] = apic;
    buf[off + 7] = lint;
    off += MP_SMALL_ENTRY_SIZE;
    entries++;
  }

  // 4.2 header: "PCMP", base table length, spec rev, checksum, OEM id (8), product id (12),
  // OEM table pointer/size (none), entry count, local APIC address, extended table length/checksum.
  buf.write('PCMP', c, 'latin1');
  buf.writeUInt16LE(off - c, c + 4);
  buf[c + 6] = MP_SPEC_REV_1_4;
  buf.write(MP_OEM_ID.padEnd(8).slice(0, 8), c + 8, 'latin1');
  buf.write(MP_PRODUCT_ID.padEnd(12).slice(0, 12), c + 16, 'latin1');
  buf.writeUInt16LE(entries, c + 34);
  buf.writeUInt32LE(LAPIC_START, c + 36);
  buf.writeUInt8((256 - checksum8(buf.subarray(c, off))) & 0xff, c + 7);
  buf.writeUInt8((256 - checksum8(buf.subarray(0, MP_FLOATING_POINTER_SIZE))) & 0xff, 10);
  return buf;
}

/** Write the MP tables at MPTABLE_START, clearing the rest of the EBDA kilobyte. */
export function writeMpTable(mem: GuestMemory, vcpuCount: number): { address: number; size: number } {
  const table = buildMpTable(vcpuCount, MPTABLE_START);
  const area = mem.view(MPTABLE_START, MPTABLE_MAX_SIZE);
  area.set(table);
  area.fill(0, table.length);
  return { address: MPTABLE_START, size: table.length };
}
