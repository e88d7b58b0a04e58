/**
 * Pieces shared by every ACPI table: the 36-byte System Description Table header (ACPI 6.x,
 * 5.2.6), the byte checksum, and the 12-byte Generic Address Structure (5.2.3.2).
 */
import { SparklerError } from '../../../errors';
import { checksum8 } from '../mptable';

export class AcpiError extends SparklerError {
  constructor(message: string) {
    super('EACPI', message);
    this.name = 'AcpiError';
  }
}

/** OEM ID (6 bytes) in the RSDP and every table header. */
export const ACPI_OEM_ID = 'SPRKLR';
/** OEM Table ID (8 bytes) of every table. */
export const ACPI_OEM_TABLE_ID = 'SPARKLER';
export const ACPI_OEM_REVISION = 1;
/** Creator ID (4 bytes): the tool that made the table. */
export const ACPI_CREATOR_ID = 'SPRK';
export const ACPI_CREATOR_REVISION = 1;

export const SDT_HEADER_SIZE = 36;

/** Sum of all bytes modulo 256: a valid table sums to 0. */
export { checksum8 };

/** Set the byte at `at` so that `buf` sums to zero. */
export function fixChecksum(buf: Buffer, at: number): void {
  buf[at] = 0;
  buf[at] = (0x100 - checksum8(buf)) & 0xff;
}

/**
 * A whole table: header (signature, length, revision, checksum, OEM ID, OEM Table ID, OEM
 * Revision, Creator ID, Creator Revision) followed by `body`, with the checksum filled in.
 * Signatures and IDs are Sparkler's own constants (printable ASCII, checked by the tests), so
 * nothing is validated here: this runs cold on every VM start.
 */
export function sdt(signature: string, revision: number, body: Buffer): Buffer {
  if (signature.length !== 4) throw new AcpiError(`"${signature}" is not a 4-character table signature.`);
  const t = Buffer.alloc(SDT_HEADER_SIZE + body.length);
  t.write(signature, 0, 'latin1');
  t.writeUInt32LE(t.length, 4);
  t[8] = revision;
  t.write(ACPI_OEM_ID.padEnd(6), 10, 'latin1');
  t.write(ACPI_OEM_TABLE_ID.padEnd(8), 16, 'latin1');
  t.writeUInt32LE(ACPI_OEM_REVISION, 24);
  t.write(ACPI_CREATOR_ID.padEnd(4), 28, 'latin1');
  t.writeUInt32LE(ACPI_CREATOR_REVISION, 32);
  body.copy(t, SDT_HEADER_SIZE);
  fixChecksum(t, 9);
  return t;
}

/** Address space ids of a Generic Address Structure. */
export const ADDRESS_SPACE_SYSTEM_MEMORY = 0;
export const ADDRESS_SPACE_SYSTEM_IO = 1;
/** Access sizes of a Generic Address Structure. */
export const ACCESS_SIZE_UNDEFINED = 0;
export const ACCESS_SIZE_BYTE = 1;

export const GAS_SIZE = 12;

export interface GenericAddress {
  spaceId: number;
  bitWidth: number;
  bitOffset: number;
  accessSize: number;
  address: number;
}

/** Generic Address Structure: space id, register bit width, bit offset, access size, 64-bit address. */
export function gas(g: GenericAddress): Buffer {
  const b = Buffer.alloc(GAS_SIZE);
  b[0] = g.spaceId;
  b[1] = g.bitWidth;
  b[2] = g.bitOffset;
  b[3] = g.accessSize;
  b.writeBigUInt64LE(BigInt(g.address), 4);
  return b;
}

/** An 8-bit register in I/O port space, accessed a byte at a time. */
export function ioPortByte(port: number): GenericAddress {
  return { spaceId: ADDRESS_SPACE_SYSTEM_IO, bitWidth: 8, bitOffset: 0, accessSize: ACCESS_SIZE_BYTE, address: port };
}
