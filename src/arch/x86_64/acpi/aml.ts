/**
 * A small AML (ACPI Machine Language) byte-code builder: just what Sparkler's DSDT needs.
 * Every function returns the encoded bytes of one term, so a table body is a concatenation:
 *
 *   scope('\\_SB_', device('COM1', name('_HID', eisaId('PNP0501')), name('_CRS', resourceTemplate(...))))
 *
 * Encodings follow the ACPI 6.x specification, chapter 20 (AML grammar) for the terms and
 * section 6.4 (resource data types) for the descriptors inside a ResourceTemplate.
 */
import { SparklerError } from '../../../errors';

export class AmlError extends SparklerError {
  constructor(message: string) {
    super('EAML', message);
    this.name = 'AmlError';
  }
}

/** Opcodes and prefixes (ACPI 6.x, 20.2 and 20.3). */
export const AML = {
  ZERO_OP: 0x00,
  ONE_OP: 0x01,
  NAME_OP: 0x08,
  BYTE_PREFIX: 0x0a,
  WORD_PREFIX: 0x0b,
  DWORD_PREFIX: 0x0c,
  STRING_PREFIX: 0x0d,
  QWORD_PREFIX: 0x0e,
  SCOPE_OP: 0x10,
  BUFFER_OP: 0x11,
  PACKAGE_OP: 0x12,
  METHOD_OP: 0x14,
  DUAL_NAME_PREFIX: 0x2e,
  MULTI_NAME_PREFIX: 0x2f,
  EXT_OP_PREFIX: 0x5b,
  DEVICE_OP: 0x82, // after EXT_OP_PREFIX
  ROOT_CHAR: 0x5c, // '\'
  PARENT_PREFIX_CHAR: 0x5e, // '^'
  RETURN_OP: 0xa4,
  IF_OP: 0xa0,
  LEQUAL_OP: 0x93,
  NOTIFY_OP: 0x86,
  ARG0_OP: 0x68,
  ONES_OP: 0xff,
  NULL_NAME: 0x00,
} as const;

/** The largest value a PkgLength can carry: 28 bits (a 4-bit nibble plus three bytes). */
export const PKG_LENGTH_MAX = 0x0fff_ffff;

const cat = (parts: ReadonlyArray<Uint8Array>): Buffer => Buffer.concat(parts);

/**
 * PkgLength for a package whose contents after the PkgLength are `bodyLength` bytes
 * (20.2.4). The encoded value counts the PkgLength bytes themselves. One byte holds up to 63
 * in bits 0-5; otherwise bits 6-7 of the lead byte give the number of bytes that follow
 * (1-3), bits 0-3 hold the least significant nibble, bits 4-5 are zero, and each following
 * byte holds the next 8 bits.
 */
export function pkgLength(bodyLength: number): Buffer {
  if (!Number.isInteger(bodyLength) || bodyLength < 0) {
    throw new AmlError(`A package body length must be a whole number of bytes, not ${bodyLength}.`);
  }
  if (bodyLength + 1 <= 0x3f) return Buffer.from([bodyLength + 1]);
  for (let extra = 1; extra <= 3; extra++) {
    const total = bodyLength + 1 + extra;
    if (total < 2 ** (4 + 8 * extra)) {
      const out = Buffer.alloc(1 + extra);
      out[0] = (extra << 6) | (total & 0x0f);
      for (let i = 1; i <= extra; i++) out[i] = Math.floor(total / 2 ** (4 + 8 * (i - 1))) & 0xff;
      return out;
    }
  }
  throw new AmlError(`A package of ${bodyLength} bytes is longer than AML can encode (${PKG_LENGTH_MAX} bytes with its length).`);
}

/** Lead byte (PkgLength) + body: the shape shared by Scope, Device, Method, Package and Buffer. */
function withPkgLength(body: Buffer): Buffer {
  return cat([pkgLength(body.length), body]);
}

/**
 * One NameSeg (20.2.2): four characters, the first a capital letter or '_', the rest capital
 * letters, digits or '_'. Shorter names are padded with '_' ("_SB" is "_SB_").
 */
export function nameSeg(seg: string): Buffer {
  if (!/^[A-Z_][A-Z0-9_]{0,3}$/.test(seg)) {
    throw new AmlError(`"${seg}" is not an AML name segment: 1-4 characters, A-Z or _ first, then A-Z, 0-9 or _.`);
  }
  return Buffer.from(seg.padEnd(4, '_'), 'latin1');
}

/**
 * A NameString (20.2.2): an optional root prefix '\' or any number of parent prefixes '^',
 * then the segments separated by '.': none is NullName, one is the bare segment, two use
 * DualNamePrefix, three or more MultiNamePrefix with a count byte.
 */
export function nameString(path: string): Buffer {
  let i = 0;
  const prefix: number[] = [];
  if (path.startsWith('\\')) {
    prefix.push(AML.ROOT_CHAR);
    i = 1;
  } else {
    while (path[i] === '^') {
      prefix.push(AML.PARENT_PREFIX_CHAR);
      i++;
    }
  }
  const rest = path.slice(i);
  const segs = rest === '' ? [] : rest.split('.').map(nameSeg);
  let body: Buffer;
  if (segs.length === 0) body = Buffer.from([AML.NULL_NAME]);
  else if (segs.length === 1) body = segs[0];
  else if (segs.length === 2) body = cat([Buffer.from([AML.DUAL_NAME_PREFIX]), ...segs]);
  else if (segs.length <= 255) body = cat([Buffer.from([AML.MULTI_NAME_PREFIX, segs.length]), ...segs]);
  else throw new AmlError(`The name "${path}" has ${segs.length} segments; AML allows at most 255.`);
  return cat([Buffer.from(prefix), body]);
}

/**
 * An integer constant in the shortest form (20.2.3): ZeroOp, OneOp and OnesOp (all 64 bits
 * set, as DSDT revision 2 integers are 64-bit) need no data; otherwise the smallest of
 * BytePrefix, WordPrefix, DWordPrefix or QWordPrefix that holds the value, little-endian.
 */
export function integer(value: number | bigint): Buffer {
  const v = BigInt(value);
  if (v < 0n || v > 0xffff_ffff_ffff_ffffn) {
    throw new AmlError(`${value} is not an AML integer: it must be between 0 and 2^64-1.`);
  }
  if (v === 0n) return Buffer.from([AML.ZERO_OP]);
  if (v === 1n) return Buffer.from([AML.ONE_OP]);
  if (v === 0xffff_ffff_ffff_ffffn) return Buffer.from([AML.ONES_OP]);
  if (v <= 0xffn) return Buffer.from([AML.BYTE_PREFIX, Number(v)]);
  if (v <= 0xffffn) {
    const b = Buffer.alloc(3);
    b[0] = AML.WORD_PREFIX;
    b.writeUInt16LE(Number(v), 1);
    return b;
  }
  if (v <= 0xffff_ffffn) {
    const b = Buffer.alloc(5);
    b[0] = AML.DWORD_PREFIX;
    b.writeUInt32LE(Number(v), 1);
    return b;
  }
  const b = Buffer.alloc(9);
  b[0] = AML.QWORD_PREFIX;
  b.writeBigUInt64LE(v, 1);
  return b;
}

/** A String constant (20.2.3): StringPrefix, ASCII characters 0x01-0x7F, a NUL. */
export function string(s: string): Buffer {
  if (!/^[\x01-\x7f]*$/.test(s)) throw new AmlError(`AML strings hold ASCII 0x01-0x7F only, which "${s}" does not.`);
  return cat([Buffer.from([AML.STRING_PREFIX]), Buffer.from(s, 'latin1'), Buffer.from([0])]);
}

/**
 * The 32-bit compressed EISA id of a PNP id such as "PNP0501" (the ASL EISAID() macro): the
 * three letters as 5-bit values (letter - 0x40) packed big-endian into the first two bytes
 * with the top bit clear, then the four hex digits as two bytes; read little-endian.
 */
export function eisaIdValue(id: string): number {
  if (!/^[A-Z]{3}[0-9A-F]{4}$/.test(id)) {
    throw new AmlError(`"${id}" is not an EISA id: three capital letters then four hex digits, such as PNP0501.`);
  }
  const c = (i: number) => id.charCodeAt(i) - 0x40;
  const letters = (c(0) << 10) | (c(1) << 5) | c(2);
  const b = Buffer.from([letters >> 8, letters & 0xff, parseInt(id.slice(3, 5), 16), parseInt(id.slice(5, 7), 16)]);
  return b.readUInt32LE(0);
}

/** EISAID("PNPxxxx") as an AML integer. */
export function eisaId(id: string): Buffer {
  return integer(eisaIdValue(id));
}

/** Name(path, value) (20.2.5.1, DefName). */
export function name(path: string, value: Buffer): Buffer {
  return cat([Buffer.from([AML.NAME_OP]), nameString(path), value]);
}

/** Scope(path) { terms } (DefScope). */
export function scope(path: string, ...terms: Buffer[]): Buffer {
  return cat([Buffer.from([AML.SCOPE_OP]), withPkgLength(cat([nameString(path), ...terms]))]);
}

/** Device(path) { terms } (DefDevice: ExtOpPrefix DeviceOp PkgLength NameString TermList). */
export function device(path: string, ...terms: Buffer[]): Buffer {
  return cat([Buffer.from([AML.EXT_OP_PREFIX, AML.DEVICE_OP]), withPkgLength(cat([nameString(path), ...terms]))]);
}

/**
 * Method(path, argCount, Serialized|NotSerialized) { terms } (DefMethod). MethodFlags: bits
 * 0-2 the argument count, bit 3 serialized, bits 4-7 the sync level (0 here).
 */
export function method(path: string, argCount: number, serialized: boolean, ...terms: Buffer[]): Buffer {
  if (!Number.isInteger(argCount) || argCount < 0 || argCount > 7) throw new AmlError(`A method takes 0-7 arguments, not ${argCount}.`);
  const flags = argCount | (serialized ? 0x08 : 0);
  return cat([Buffer.from([AML.METHOD_OP]), withPkgLength(cat([nameString(path), Buffer.from([flags]), ...terms]))]);
}

/** Return(value) (DefReturn). */
export function returnOp(value: Buffer): Buffer {
  return cat([Buffer.from([AML.RETURN_OP]), value]);
}

/** If (predicate) { terms } (DefIfElse without Else: IfOp PkgLength Predicate TermList). */
export function ifOp(predicate: Buffer, ...terms: Buffer[]): Buffer {
  return cat([Buffer.from([AML.IF_OP]), withPkgLength(cat([predicate, ...terms]))]);
}

/** LEqual (a, b) (DefLEqual). */
export function lEqual(a: Buffer, b: Buffer): Buffer {
  return cat([Buffer.from([AML.LEQUAL_OP]), a, b]);
}

/** ArgN (ArgObj: Arg0Op + n), a method's n-th argument. */
export function arg(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 6) throw new AmlError(`A method argument is Arg0-Arg6, not Arg${n}.`);
  return Buffer.from([AML.ARG0_OP + n]);
}

/** Notify (object, value) (DefNotify: NotifyOp NotifyObject NotifyValue). */
export function notify(path: string, value: number): Buffer {
  return cat([Buffer.from([AML.NOTIFY_OP]), nameString(path), integer(value)]);
}

/** Package() { elements } (DefPackage: PackageOp PkgLength NumElements PackageElementList). */
export function packageOf(...elements: Buffer[]): Buffer {
  if (elements.length > 255) throw new AmlError(`A Package holds at most 255 elements, not ${elements.length}.`);
  return cat([Buffer.from([AML.PACKAGE_OP]), withPkgLength(cat([Buffer.from([elements.length]), ...elements]))]);
}

/** Buffer() { bytes } (DefBuffer: BufferOp PkgLength BufferSize ByteList). */
export function buffer(bytes: Uint8Array): Buffer {
  return cat([Buffer.from([AML.BUFFER_OP]), withPkgLength(cat([integer(bytes.length), bytes]))]);
}

// ---- Resource descriptors (ACPI 6.x, 6.4) ----

/** End Tag (small item 0xF, length 1): 0x79, then a checksum; 0 means "treat as valid". */
export const END_TAG = Buffer.from([0x79, 0x00]);

/** ResourceTemplate() { descriptors }: a Buffer holding the descriptors and an End Tag. */
export function resourceTemplate(...descriptors: Buffer[]): Buffer {
  return buffer(cat([...descriptors, END_TAG]));
}

function checkRange(what: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new AmlError(`${what} must be a whole number from 0 to 0x${max.toString(16)}, not ${v}.`);
}

/**
 * Memory32Fixed(ReadWrite|ReadOnly, base, length) (6.4.3.4, large item 0x06, 9 data bytes):
 * information byte (bit 0 = writeable), base, length.
 */
export function memory32Fixed(readWrite: boolean, base: number, length: number): Buffer {
  checkRange('A Memory32Fixed base', base, 0xffff_ffff);
  checkRange('A Memory32Fixed length', length, 0xffff_ffff);
  const b = Buffer.alloc(12);
  b[0] = 0x86;
  b.writeUInt16LE(9, 1);
  b[3] = readWrite ? 1 : 0;
  b.writeUInt32LE(base, 4);
  b.writeUInt32LE(length, 8);
  return b;
}

export interface InterruptFlags {
  /** ResourceConsumer (the default) or ResourceProducer. */
  consumer?: boolean;
  /** Edge (true) or Level (false) triggered. */
  edge: boolean;
  /** ActiveLow (true) or ActiveHigh (false). */
  activeLow: boolean;
  shared?: boolean;
  wakeCapable?: boolean;
}

/**
 * Interrupt(ResourceConsumer, Edge|Level, ActiveHigh|ActiveLow, Exclusive|Shared) { gsis }
 * (6.4.3.6, Extended Interrupt Descriptor, large item 0x09): flags byte (bit 0 consumer, bit 1
 * edge, bit 2 active low, bit 3 shared, bit 4 wake capable), the count, then one 32-bit
 * interrupt number each. No resource source is emitted.
 */
export function interrupt(flags: InterruptFlags, gsis: number[]): Buffer {
  if (gsis.length < 1 || gsis.length > 255) throw new AmlError(`An Interrupt descriptor lists 1-255 interrupts, not ${gsis.length}.`);
  const b = Buffer.alloc(5 + 4 * gsis.length);
  b[0] = 0x89;
  b.writeUInt16LE(2 + 4 * gsis.length, 1);
  b[3] = ((flags.consumer ?? true) ? 0x01 : 0)
    | (flags.edge ? 0x02 : 0)
    | (flags.activeLow ? 0x04 : 0)
    | (flags.shared ? 0x08 : 0)
    | (flags.wakeCapable ? 0x10 : 0);
  b[4] = gsis.length;
  gsis.forEach((g, i) => {
    checkRange('An interrupt number', g, 0xffff_ffff);
    b.writeUInt32LE(g, 5 + 4 * i);
  });
  return b;
}

/**
 * IO(Decode16, min, max, alignment, length) (6.4.2.5, small item 0x08, 7 data bytes):
 * information byte (bit 0 = 16-bit decode), minimum and maximum base, alignment, length.
 */
export function io(min: number, max: number, alignment: number, length: number): Buffer {
  checkRange('An IO minimum base', min, 0xffff);
  checkRange('An IO maximum base', max, 0xffff);
  checkRange('An IO alignment', alignment, 0xff);
  checkRange('An IO length', length, 0xff);
  const b = Buffer.alloc(8);
  b[0] = 0x47;
  b[1] = 0x01;
  b.writeUInt16LE(min, 2);
  b.writeUInt16LE(max, 4);
  b[6] = alignment;
  b[7] = length;
  return b;
}

/**
 * IRQNoFlags() { irqs } (6.4.2.1, small item 0x04 with 2 data bytes): a 16-bit mask of ISA
 * IRQs; without the information byte they are edge-triggered, active high, exclusive.
 */
export function irqNoFlags(irqs: number[]): Buffer {
  let mask = 0;
  for (const irq of irqs) {
    checkRange('An ISA IRQ', irq, 15);
    mask |= 1 << irq;
  }
  const b = Buffer.alloc(3);
  b[0] = 0x22;
  b.writeUInt16LE(mask, 1);
  return b;
}
