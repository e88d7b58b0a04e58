/**
 * ACPI tables for x86_64 guests: RSDP -> XSDT -> { FADT -> DSDT, MADT }, written into the
 * legacy BIOS area 0xE0000-0xFFFFF, which is guest RAM (the first memory region covers it)
 * that e820 reports as reserved and that nothing else in layout.ts uses. The RSDP goes first,
 * at 0xE0000: the zero page carries its address (boot_params.acpi_rsdp_addr), and a kernel
 * that ignores that field finds it by scanning 0xE0000-0xFFFFF on 16-byte boundaries.
 *
 *   0xE0000  RSDP (36 bytes)        then, each on a 16-byte boundary:
 *            XSDT, FADT, MADT, DSDT
 *
 * Use it as configureBoot's hook:
 *   writeAcpiTables: (mem) => writeAcpiTables(mem, { vcpuCount, virtioDevices })
 */
import { GuestMemory } from '../../../memory/guest-memory';
import { VIRTIO_MMIO_SLOT_SIZE } from '../layout';
import { IOAPIC_PINS } from '../mptable';
import { COM1_IRQ, I8042_IRQ } from '../layout';
import { buildDsdt, VirtioMmioDeviceDesc } from './dsdt';
import { buildFadt, FADT_SIZE } from './fadt';
import { buildMadt } from './madt';
import { buildRsdp, buildXsdt, RSDP_SIZE, xsdtSizeFor } from './rsdp';
import { AcpiError } from './sdt';
import { newGenerationId, VMGENID_ADDRESS, writeGenerationId } from './vmgenid';

export { AcpiError } from './sdt';
export { newGenerationId, readGenerationId, VMGENID_ADDRESS, VMGENID_GSI, writeGenerationId } from './vmgenid';
export type { VirtioMmioDeviceDesc } from './dsdt';
export {
  SLEEP_CONTROL_PORT, SLEEP_STATUS_PORT, S5_SLEEP_CONTROL_VALUE, isS5Request, RESET_PORT, RESET_VALUE,
} from './fadt';

/** Start of the ACPI area: the legacy BIOS extension/ROM area below 1 MiB. */
export const ACPI_TABLES_START = 0xe0000;
/** End (exclusive) of the ACPI area: 1 MiB. */
export const ACPI_TABLES_END = 0x100000;
export const ACPI_TABLES_SIZE = ACPI_TABLES_END - ACPI_TABLES_START;
/** Where the RSDP goes: the first 16-byte boundary the guest's scan of 0xE0000-0xFFFFF looks at. */
export const RSDP_ADDRESS = ACPI_TABLES_START;
const TABLE_ALIGN = 16;

export interface AcpiConfig {
  vcpuCount: number;
  /** One per virtio-mmio device, in slot order: its register window and its GSI. */
  virtioDevices: readonly VirtioMmioDeviceDesc[];
}

export interface AcpiTables {
  /** Everything from `base`, ready to copy into guest memory. */
  bytes: Buffer;
  rsdp: number;
  xsdt: number;
  fadt: number;
  madt: number;
  dsdt: number;
}

function checkVirtioDevices(devices: readonly VirtioMmioDeviceDesc[]): void {
  const windows: Array<{ start: number; end: number; i: number }> = [];
  const gsis = new Set<number>();
  devices.forEach((d, i) => {
    const size = d.size ?? VIRTIO_MMIO_SLOT_SIZE;
    if (!Number.isInteger(size) || size <= 0) throw new AcpiError(`virtio device ${i}: its window size ${size} must be a positive whole number of bytes.`);
    if (!Number.isInteger(d.address) || d.address <= 0 || d.address + size > 0x1_0000_0000) {
      throw new AcpiError(`virtio device ${i}: its window at 0x${d.address.toString(16)} (0x${size.toString(16)} bytes) must lie below 4 GiB.`);
    }
    if (!Number.isInteger(d.gsi) || d.gsi < 0 || d.gsi >= IOAPIC_PINS) {
      throw new AcpiError(`virtio device ${i}: GSI ${d.gsi} is not an I/O APIC pin (0-${IOAPIC_PINS - 1}).`);
    }
    if (d.gsi === COM1_IRQ || d.gsi === I8042_IRQ) {
      throw new AcpiError(`virtio device ${i}: GSI ${d.gsi} belongs to ${d.gsi === COM1_IRQ ? 'the serial port' : 'the i8042'}.`);
    }
    if (gsis.has(d.gsi)) throw new AcpiError(`virtio device ${i}: GSI ${d.gsi} is used twice.`);
    const clash = windows.find((w) => d.address < w.end && w.start < d.address + size);
    if (clash) throw new AcpiError(`virtio device ${i}: its window at 0x${d.address.toString(16)} overlaps device ${clash.i}'s.`);
    gsis.add(d.gsi);
    windows.push({ start: d.address, end: d.address + size, i });
  });
}

const align = (n: number) => Math.ceil(n / TABLE_ALIGN) * TABLE_ALIGN;

/** Build all the tables as they appear at guest-physical `base` (the RSDP is at `base`). Pure. */
export function buildAcpiTables(config: AcpiConfig, base: number = ACPI_TABLES_START): AcpiTables {
  if (base % TABLE_ALIGN !== 0) throw new AcpiError(`The ACPI tables must start on a 16-byte boundary, not at 0x${base.toString(16)}.`);
  checkVirtioDevices(config.virtioDevices);
  const madtBytes = buildMadt(config.vcpuCount);
  const dsdtBytes = buildDsdt(config.virtioDevices);
  const fadtSize = FADT_SIZE;
  const xsdtSize = xsdtSizeFor(2);

  const rsdp = base;
  const xsdt = align(rsdp + RSDP_SIZE);
  const fadt = align(xsdt + xsdtSize);
  const madt = align(fadt + fadtSize);
  const dsdt = align(madt + madtBytes.length);
  const end = dsdt + dsdtBytes.length;

  const bytes = Buffer.alloc(end - base);
  buildRsdp(xsdt).copy(bytes, rsdp - base);
  buildXsdt([fadt, madt]).copy(bytes, xsdt - base);
  buildFadt(dsdt).copy(bytes, fadt - base);
  madtBytes.copy(bytes, madt - base);
  dsdtBytes.copy(bytes, dsdt - base);
  return { bytes, rsdp, xsdt, fadt, madt, dsdt };
}

/**
 * Write the ACPI tables into guest RAM at ACPI_TABLES_START (clearing the rest of the area,
 * so no stale RSDP can be found by a scan) and return the RSDP's address for the zero page.
 */
export function writeAcpiTables(mem: GuestMemory, config: AcpiConfig): number {
  const tables = buildAcpiTables(config, ACPI_TABLES_START);
  if (tables.bytes.length > ACPI_TABLES_SIZE) {
    throw new AcpiError(`The ACPI tables need ${tables.bytes.length} bytes, more than the ${ACPI_TABLES_SIZE} bytes at 0x${ACPI_TABLES_START.toString(16)}.`);
  }
  if (!mem.isValidRange(ACPI_TABLES_START, ACPI_TABLES_SIZE)) {
    throw new AcpiError(`Guest RAM does not cover the ACPI area 0x${ACPI_TABLES_START.toString(16)}-0x${ACPI_TABLES_END.toString(16)}: the guest needs at least 1 MiB.`);
  }
  if (ACPI_TABLES_START + tables.bytes.length > VMGENID_ADDRESS) {
    throw new AcpiError(`The ACPI tables need ${tables.bytes.length} bytes and would overlap the VM generation ID at 0x${VMGENID_ADDRESS.toString(16)}.`);
  }
  const area = mem.view(ACPI_TABLES_START, ACPI_TABLES_SIZE);
  area.set(tables.bytes);
  area.fill(0, tables.bytes.length);
  writeGenerationId(mem, newGenerationId());
  return tables.rsdp;
}
