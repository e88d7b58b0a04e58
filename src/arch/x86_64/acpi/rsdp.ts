/**
 * RSDP, the Root System Description Pointer (ACPI 6.x, 5.2.5.3), revision 2 (ACPI 2.0+), and
 * the XSDT it points to (5.2.8).
 *
 * RSDP layout: "RSD PTR " (8), checksum of bytes 0-19 (1), OEM ID (6), revision (1), RSDT
 * address (4), length (4, = 36), XSDT address (8), extended checksum of all 36 bytes (1),
 * reserved (3). There is no RSDT: revision 2 points at the XSDT, whose entries are 64-bit.
 */
import { ACPI_OEM_ID, fixChecksum, sdt, SDT_HEADER_SIZE } from './sdt';

export const RSDP_SIGNATURE = 'RSD PTR ';
export const RSDP_REVISION = 2;
export const RSDP_SIZE = 36;
/** The revision-1 part covered by the first checksum. */
export const RSDP_V1_SIZE = 20;
export const XSDT_REVISION = 1;

export function buildRsdp(xsdtAddress: number): Buffer {
  const b = Buffer.alloc(RSDP_SIZE);
  b.write(RSDP_SIGNATURE, 0, 'latin1');
  b.write(ACPI_OEM_ID.padEnd(6, ' '), 9, 'latin1');
  b[15] = RSDP_REVISION;
  b.writeUInt32LE(0, 16); // no RSDT
  b.writeUInt32LE(RSDP_SIZE, 20);
  b.writeBigUInt64LE(BigInt(xsdtAddress), 24);
  fixChecksum(b.subarray(0, RSDP_V1_SIZE), 8);
  fixChecksum(b, 32);
  return b;
}

/** The XSDT's size for `count` table pointers: the header and a 64-bit address each. */
export function xsdtSizeFor(count: number): number {
  return SDT_HEADER_SIZE + 8 * count;
}

/** The XSDT: the header and one 64-bit address per table (the FADT first, by convention). */
export function buildXsdt(tableAddresses: readonly number[]): Buffer {
  const body = Buffer.alloc(8 * tableAddresses.length);
  tableAddresses.forEach((a, i) => body.writeBigUInt64LE(BigInt(a), 8 * i));
  return sdt('XSDT', XSDT_REVISION, body);
}
