/**
 * Read ACPI tables back out of guest memory the way a guest does (RSDP -> XSDT -> tables,
 * checking every checksum and length), and decode the small subset of AML the DSDT uses
 * (Scope, Device, Method, Name; integers, strings, buffers, packages). For tests and tools.
 */
import { GuestMemory } from '../../../memory/guest-memory';
import { AML } from './aml';
import { AcpiError, checksum8, SDT_HEADER_SIZE } from './sdt';

export interface SdtInfo {
  address: number;
  signature: string;
  length: number;
  revision: number;
  oemId: string;
  oemTableId: string;
  /** The whole table, header included. */
  bytes: Buffer;
}

export interface RsdpInfo {
  address: number;
  revision: number;
  oemId: string;
  rsdtAddress: number;
  xsdtAddress: number;
}

export function readRsdp(mem: GuestMemory, address: number): RsdpInfo {
  const b = mem.read(address, 36);
  if (b.toString('latin1', 0, 8) !== 'RSD PTR ') throw new AcpiError(`No RSDP signature at 0x${address.toString(16)}.`);
  if (checksum8(b.subarray(0, 20)) !== 0) throw new AcpiError('The RSDP checksum (bytes 0-19) is wrong.');
  const length = b.readUInt32LE(20);
  if (b[15] >= 2) {
    if (length !== 36) throw new AcpiError(`The RSDP length is ${length}, not 36.`);
    if (checksum8(b) !== 0) throw new AcpiError('The RSDP extended checksum is wrong.');
  }
  return {
    address,
    revision: b[15],
    oemId: b.toString('latin1', 9, 15),
    rsdtAddress: b.readUInt32LE(16),
    xsdtAddress: Number(b.readBigUInt64LE(24)),
  };
}

/** Scan [start, end) on 16-byte boundaries for a valid RSDP, as Linux does in 0xE0000-0xFFFFF. */
export function scanForRsdp(mem: GuestMemory, start = 0xe0000, end = 0x100000): number | undefined {
  for (let a = start; a + 36 <= end; a += 16) {
    if (mem.read(a, 8).toString('latin1') !== 'RSD PTR ') continue;
    try {
      readRsdp(mem, a);
      return a;
    } catch {
      // a signature with a bad checksum: keep looking, as a guest would
    }
  }
  return undefined;
}

export function readSdt(mem: GuestMemory, address: number): SdtInfo {
  const head = mem.read(address, SDT_HEADER_SIZE);
  const length = head.readUInt32LE(4);
  if (length < SDT_HEADER_SIZE) throw new AcpiError(`The table at 0x${address.toString(16)} claims ${length} bytes, less than its header.`);
  const bytes = mem.read(address, length);
  const signature = head.toString('latin1', 0, 4);
  if (checksum8(bytes) !== 0) throw new AcpiError(`The ${signature} table at 0x${address.toString(16)} has a bad checksum.`);
  return {
    address, signature, length, revision: head[8], bytes,
    oemId: head.toString('latin1', 10, 16), oemTableId: head.toString('latin1', 16, 24),
  };
}

/** Follow RSDP -> XSDT -> each table (and FADT -> DSDT); every checksum is verified. Keyed by signature. */
export function readAcpiTables(mem: GuestMemory, rsdpAddress: number): { rsdp: RsdpInfo; tables: Map<string, SdtInfo>; xsdtEntries: number[] } {
  const rsdp = readRsdp(mem, rsdpAddress);
  const xsdt = readSdt(mem, rsdp.xsdtAddress);
  if (xsdt.signature !== 'XSDT') throw new AcpiError(`The RSDP points at a ${xsdt.signature} table, not the XSDT.`);
  const tables = new Map<string, SdtInfo>([['XSDT', xsdt]]);
  const xsdtEntries: number[] = [];
  for (let off = SDT_HEADER_SIZE; off + 8 <= xsdt.length; off += 8) {
    const addr = Number(xsdt.bytes.readBigUInt64LE(off));
    xsdtEntries.push(addr);
    const t = readSdt(mem, addr);
    tables.set(t.signature, t);
  }
  const fadt = tables.get('FACP');
  if (fadt) {
    const x = fadt.length >= 148 ? Number(fadt.bytes.readBigUInt64LE(140)) : 0;
    const dsdtAddr = x || fadt.bytes.readUInt32LE(40);
    tables.set('DSDT', readSdt(mem, dsdtAddr));
  }
  return { rsdp, tables, xsdtEntries };
}

// ---- A decoder for the AML subset Sparkler emits ----

export type AmlValue =
  | { kind: 'integer'; value: bigint }
  | { kind: 'string'; value: string }
  | { kind: 'buffer'; value: Buffer }
  | { kind: 'package'; elements: AmlValue[] };

export interface AmlContainer { kind: 'scope' | 'device'; name: string; children: AmlNode[] }

export type AmlNode =
  | AmlContainer
  | { kind: 'method'; name: string; flags: number; body: Buffer }
  | { kind: 'name'; name: string; value: AmlValue };

class Reader {
  constructor(readonly buf: Buffer, public pos = 0) {}
  u8(): number {
    if (this.pos >= this.buf.length) throw new AcpiError(`AML ends early at byte ${this.pos}.`);
    return this.buf[this.pos++];
  }
  take(n: number): Buffer {
    if (this.pos + n > this.buf.length) throw new AcpiError(`AML ends early: ${n} bytes wanted at ${this.pos}.`);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  /** Read a PkgLength and return the end offset of the package it measures. */
  pkgEnd(): number {
    const start = this.pos;
    const lead = this.u8();
    const extra = lead >> 6;
    let len = extra === 0 ? lead & 0x3f : lead & 0x0f;
    for (let i = 0; i < extra; i++) len += this.u8() * 2 ** (4 + 8 * i);
    if (extra > 0 && (lead & 0x30) !== 0) throw new AcpiError(`PkgLength at ${start} has reserved bits 4-5 set.`);
    const end = start + len;
    if (end > this.buf.length) throw new AcpiError(`A package at ${start} runs past the end of the AML (${end} > ${this.buf.length}).`);
    return end;
  }
  nameString(): string {
    let prefix = '';
    if (this.buf[this.pos] === AML.ROOT_CHAR) { prefix = '\\'; this.pos++; }
    else while (this.buf[this.pos] === AML.PARENT_PREFIX_CHAR) { prefix += '^'; this.pos++; }
    const b = this.u8();
    let count: number;
    if (b === AML.NULL_NAME) return prefix;
    if (b === AML.DUAL_NAME_PREFIX) count = 2;
    else if (b === AML.MULTI_NAME_PREFIX) count = this.u8();
    else { this.pos--; count = 1; }
    const segs: string[] = [];
    for (let i = 0; i < count; i++) segs.push(this.take(4).toString('latin1'));
    return prefix + segs.join('.');
  }
}

function readValue(r: Reader): AmlValue {
  const op = r.u8();
  switch (op) {
    case AML.ZERO_OP: return { kind: 'integer', value: 0n };
    case AML.ONE_OP: return { kind: 'integer', value: 1n };
    case AML.ONES_OP: return { kind: 'integer', value: 0xffff_ffff_ffff_ffffn };
    case AML.BYTE_PREFIX: return { kind: 'integer', value: BigInt(r.u8()) };
    case AML.WORD_PREFIX: return { kind: 'integer', value: BigInt(r.take(2).readUInt16LE(0)) };
    case AML.DWORD_PREFIX: return { kind: 'integer', value: BigInt(r.take(4).readUInt32LE(0)) };
    case AML.QWORD_PREFIX: return { kind: 'integer', value: r.take(8).readBigUInt64LE(0) };
    case AML.STRING_PREFIX: {
      const nul = r.buf.indexOf(0, r.pos);
      if (nul < 0) throw new AcpiError('An AML string has no terminating NUL.');
      const s = r.buf.toString('latin1', r.pos, nul);
      r.pos = nul + 1;
      return { kind: 'string', value: s };
    }
    case AML.BUFFER_OP: {
      const end = r.pkgEnd();
      const size = readValue(r);
      if (size.kind !== 'integer') throw new AcpiError('A Buffer size is not an integer.');
      const data = r.take(end - r.pos);
      if (BigInt(data.length) !== size.value) throw new AcpiError(`A Buffer says ${size.value} bytes but holds ${data.length}.`);
      return { kind: 'buffer', value: Buffer.from(data) };
    }
    case AML.PACKAGE_OP: {
      const end = r.pkgEnd();
      const n = r.u8();
      const elements: AmlValue[] = [];
      while (r.pos < end) elements.push(readValue(r));
      if (r.pos !== end) throw new AcpiError('A Package element runs past the package.');
      if (elements.length !== n) throw new AcpiError(`A Package says ${n} elements but holds ${elements.length}.`);
      return { kind: 'package', elements };
    }
    default:
      throw new AcpiError(`Unsupported AML data opcode 0x${op.toString(16)} at ${r.pos - 1}.`);
  }
}

function readTerms(r: Reader, end: number): AmlNode[] {
  const out: AmlNode[] = [];
  while (r.pos < end) {
    const op = r.u8();
    if (op === AML.NAME_OP) {
      const name = r.nameString();
      out.push({ kind: 'name', name, value: readValue(r) });
    } else if (op === AML.SCOPE_OP || (op === AML.EXT_OP_PREFIX && r.u8() === AML.DEVICE_OP)) {
      const pEnd = r.pkgEnd();
      const name = r.nameString();
      out.push({ kind: op === AML.SCOPE_OP ? 'scope' : 'device', name, children: readTerms(r, pEnd) });
    } else if (op === AML.METHOD_OP) {
      const pEnd = r.pkgEnd();
      const name = r.nameString();
      const flags = r.u8();
      out.push({ kind: 'method', name, flags, body: Buffer.from(r.take(pEnd - r.pos)) });
    } else {
      throw new AcpiError(`Unsupported AML opcode 0x${op.toString(16)} at ${r.pos - 1}.`);
    }
    if (r.pos > end) throw new AcpiError(`An AML term runs past its enclosing package (${r.pos} > ${end}).`);
  }
  return out;
}

/** Decode a DSDT body (the AML after the 36-byte header). */
export function decodeAml(aml: Buffer): AmlNode[] {
  const r = new Reader(aml);
  return readTerms(r, aml.length);
}
