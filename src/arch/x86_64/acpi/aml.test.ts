/**
 * AML encodings pinned byte by byte. Every expected value is worked out by hand from the
 * ACPI 6.x specification (20.2 AML grammar, 6.4 resource descriptors); the comments show the
 * arithmetic. (acpi.iasl.test.ts separately checks a whole DSDT against iasl's own output.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AmlError, buffer, device, eisaId, eisaIdValue, integer, interrupt, io, irqNoFlags, memory32Fixed, method, name,
  nameSeg, nameString, packageOf, pkgLength, resourceTemplate, returnOp, scope, string,
} from './aml';
import { decodeAml } from './read';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const eq = (actual: Buffer, expected: string, msg?: string) => assert.equal(actual.toString('hex'), hex(expected).toString('hex'), msg);

test('PkgLength: one byte up to 63 including itself', () => {
  eq(pkgLength(0), '01');
  eq(pkgLength(10), '0b');
  eq(pkgLength(62), '3f'); // 62 + 1 = 63, the largest one-byte value (bits 0-5)
});

test('PkgLength: two bytes, lead nibble then the next 8 bits', () => {
  eq(pkgLength(63), '41 04'); // total 65 = 0x41: lead 0x40 | 0x1, then 0x41 >> 4 = 0x04
  eq(pkgLength(72), '4a 04'); // total 74 = 0x4a
  eq(pkgLength(4093), '4f ff'); // total 4095 = 0xfff, the largest two-byte value
});

test('PkgLength: three and four bytes, and the 28-bit limit', () => {
  eq(pkgLength(4094), '81 00 01'); // total 4097 = 0x1001: lead 0x80 | 0x1, 0x00, 0x01
  eq(pkgLength(0xffffc), '8f ff ff'); // total 0xfffff
  eq(pkgLength(0xffffd), 'c1 00 00 01'); // total 0x100001
  eq(pkgLength(0x0ffffffb), 'cf ff ff ff'); // total 0x0fffffff
  assert.throws(() => pkgLength(0x0ffffffc), AmlError);
  assert.throws(() => pkgLength(-1), AmlError);
  assert.throws(() => pkgLength(1.5), AmlError);
});

test('PkgLength: lead byte bits 4-5 are always zero in multi-byte forms', () => {
  for (const n of [63, 100, 1000, 4093, 4094, 70000, 0xffffd, 5_000_000]) {
    const b = pkgLength(n);
    assert.ok(b.length > 1);
    assert.equal(b[0] & 0x30, 0, `n=${n}`);
    assert.equal(b[0] >> 6, b.length - 1, `n=${n}: byte count`);
    let total = b[0] & 0x0f;
    for (let i = 1; i < b.length; i++) total += b[i] * 2 ** (4 + 8 * (i - 1));
    assert.equal(total, n + b.length, `n=${n}: the value counts the PkgLength bytes`);
  }
});

test('NameSeg: padded with underscores, checked', () => {
  eq(nameSeg('_SB'), '5f 53 42 5f');
  eq(nameSeg('COM1'), '43 4f 4d 31');
  eq(nameSeg('A'), '41 5f 5f 5f');
  for (const bad of ['', 'abc', '1ABC', 'TOOLONG', 'A-B', 'É']) assert.throws(() => nameSeg(bad), AmlError, bad);
});

test('NameString: root, parent prefixes, dual and multi names, NullName', () => {
  eq(nameString('_HID'), '5f 48 49 44');
  eq(nameString('\\_SB'), '5c 5f 53 42 5f');
  eq(nameString('\\_SB.COM1'), '5c 2e 5f 53 42 5f 43 4f 4d 31'); // DualNamePrefix 0x2e
  eq(nameString('A.B.C'), '2f 03 41 5f 5f 5f 42 5f 5f 5f 43 5f 5f 5f'); // MultiNamePrefix 0x2f, count 3
  eq(nameString('^^FOO'), '5e 5e 46 4f 4f 5f');
  eq(nameString('\\'), '5c 00'); // the root itself: RootChar NullName
  eq(nameString(''), '00');
  assert.throws(() => nameString('\\_SB..X'), AmlError);
});

test('integers use the shortest encoding', () => {
  eq(integer(0), '00'); // ZeroOp
  eq(integer(1), '01'); // OneOp
  eq(integer(2), '0a 02'); // BytePrefix
  eq(integer(0xff), '0a ff');
  eq(integer(0x100), '0b 00 01'); // WordPrefix, little-endian
  eq(integer(0xffff), '0b ff ff');
  eq(integer(0x10000), '0c 00 00 01 00'); // DWordPrefix
  eq(integer(0xffff_ffff), '0c ff ff ff ff');
  eq(integer(0x1_0000_0000), '0e 00 00 00 00 01 00 00 00'); // QWordPrefix
  eq(integer(0xffff_ffff_ffff_fffen), '0e fe ff ff ff ff ff ff ff');
  eq(integer(0xffff_ffff_ffff_ffffn), 'ff'); // OnesOp (64-bit in a revision 2 DSDT)
  assert.throws(() => integer(-1), AmlError);
  assert.throws(() => integer(2n ** 64n), AmlError);
});

test('strings: StringPrefix, ASCII, NUL', () => {
  eq(string('LNRO0005'), '0d 4c 4e 52 4f 30 30 30 35 00');
  eq(string(''), '0d 00');
  assert.throws(() => string('a\u0000b'), AmlError);
  assert.throws(() => string('é'), AmlError);
});

test('EISAID: 5-bit letters packed big-endian, then the hex digits', () => {
  // P=0x10 N=0x0e P=0x10: 0x10<<10 | 0x0e<<5 | 0x10 = 0x41d0 -> bytes 41 d0; "0501" -> 05 01.
  assert.equal(eisaIdValue('PNP0501'), 0x0105d041);
  assert.equal(eisaIdValue('PNP0A03'), 0x030ad041); // the PCI root bridge id every DSDT dump shows
  eq(eisaId('PNP0501'), '0c 41 d0 05 01');
  eq(eisaId('PNP0303'), '0c 41 d0 03 03');
  for (const bad of ['PNP050', 'pnp0501', 'PNP050G', 'P1P0501']) assert.throws(() => eisaIdValue(bad), AmlError, bad);
});

test('Name, Package, Method and Return', () => {
  eq(name('_HID', eisaId('PNP0501')), '08 5f 48 49 44 0c 41 d0 05 01');
  eq(name('_UID', integer(0)), '08 5f 55 49 44 00');
  // Package(){5, 0}: PackageOp, PkgLength 5 (itself + count + 0a 05 + 00), NumElements 2.
  eq(packageOf(integer(5), integer(0)), '12 05 02 0a 05 00');
  eq(name('\\_S5', packageOf(integer(5), integer(0))), '08 5c 5f 53 35 5f 12 05 02 0a 05 00');
  eq(packageOf(), '12 02 00');
  // Method(_STA, 0, NotSerialized) { Return (0x0F) }: body = name(4) + flags(1) + a4 0a 0f (3) = 8.
  eq(method('_STA', 0, false, returnOp(integer(0x0f))), '14 09 5f 53 54 41 00 a4 0a 0f');
  // Serialized, 2 arguments: flags = 2 | 0x08.
  eq(method('FOO', 2, true), '14 06 46 4f 4f 5f 0a');
  assert.throws(() => method('FOO', 8, false), AmlError);
});

test('Buffer: size as an integer, PkgLength switching to two bytes', () => {
  // BufferSize 3 is 0a 03; body = 2 + 3 = 5, PkgLength 6.
  eq(buffer(Buffer.from([1, 2, 3])), '11 06 0a 03 01 02 03');
  // A one-byte buffer's size is OneOp.
  eq(buffer(Buffer.from([0xff])), '11 03 01 ff');
});

test('resource descriptors', () => {
  // Memory32Fixed: large item 0x06 -> tag 0x86, length 9, RW=1, base, length (little-endian).
  eq(memory32Fixed(true, 0xc000_1000, 0x1000), '86 09 00 01 00 10 00 c0 00 10 00 00');
  eq(memory32Fixed(false, 0xfed0_0000, 0x400), '86 09 00 00 00 00 d0 fe 00 04 00 00');
  // Extended Interrupt: large item 0x09 -> tag 0x89, length 6 (flags, count, one DWORD).
  // Consumer (bit 0) + edge (bit 1) = 0x03; active high, exclusive leave bits 2 and 3 clear.
  eq(interrupt({ edge: true, activeLow: false }, [5]), '89 06 00 03 01 05 00 00 00');
  // Level, active low (bit 2), shared (bit 3): 0x01 | 0x04 | 0x08 = 0x0d.
  eq(interrupt({ edge: false, activeLow: true, shared: true }, [16]), '89 06 00 0d 01 10 00 00 00');
  eq(interrupt({ edge: true, activeLow: false }, [5, 6]), '89 0a 00 03 02 05 00 00 00 06 00 00 00');
  // IO: small item 0x08, length 7 -> tag 0x47; Decode16 = 1; min, max, alignment, length.
  eq(io(0x3f8, 0x3f8, 1, 8), '47 01 f8 03 f8 03 01 08');
  eq(io(0x60, 0x60, 1, 1), '47 01 60 00 60 00 01 01');
  // IRQNoFlags: small item 0x04, length 2 -> tag 0x22; 16-bit mask.
  eq(irqNoFlags([4]), '22 10 00');
  eq(irqNoFlags([1]), '22 02 00');
  eq(irqNoFlags([3, 12]), '22 08 10');
  assert.throws(() => irqNoFlags([16]), AmlError);
  assert.throws(() => interrupt({ edge: true, activeLow: false }, []), AmlError);
  assert.throws(() => memory32Fixed(true, 0x1_0000_0000, 0x1000), AmlError);
});

test('ResourceTemplate: a Buffer of the descriptors and an End Tag', () => {
  // 12 + 9 descriptor bytes + 79 00 = 23 (0x17): BufferSize 0a 17; PkgLength = 1 + 2 + 23 = 26 (0x1a).
  eq(
    resourceTemplate(memory32Fixed(true, 0xc000_1000, 0x1000), interrupt({ edge: true, activeLow: false }, [5])),
    '11 1a 0a 17  86 09 00 01 00 10 00 c0 00 10 00 00  89 06 00 03 01 05 00 00 00  79 00',
  );
});

test('a virtio-mmio Device, whole', () => {
  const crs = resourceTemplate(memory32Fixed(true, 0xc000_1000, 0x1000), interrupt({ edge: true, activeLow: false }, [5]));
  // Body: name 'V000' (4) + Name(_HID, "LNRO0005") (5 + 10) + Name(_UID, Zero) (6) + Name(_CRS, ...) (5 + 27) = 57;
  // PkgLength 58 = 0x3a fits one byte.
  eq(
    device('V000', name('_HID', string('LNRO0005')), name('_UID', integer(0)), name('_CRS', crs)),
    `5b 82 3a 56 30 30 30
     08 5f 48 49 44 0d 4c 4e 52 4f 30 30 30 35 00
     08 5f 55 49 44 00
     08 5f 43 52 53 11 1a 0a 17 86 09 00 01 00 10 00 c0 00 10 00 00 89 06 00 03 01 05 00 00 00 79 00`,
  );
});

test('Scope with a body over 63 bytes gets a two-byte PkgLength and decodes back', () => {
  const big = buffer(Buffer.alloc(70, 0xaa)); // 11 4a 04 0a 46 + 70 bytes: total 74 = 0x4a
  assert.equal(big.subarray(0, 5).toString('hex'), '114a040a46');
  const aml = scope('\\_SB', device('DEV0', name('_UID', integer(7)), name('DATA', big)));
  assert.equal(aml[0], 0x10);
  assert.equal(aml[1] >> 6, 1, 'two-byte PkgLength');
  const [s] = decodeAml(aml);
  assert.ok(s.kind === 'scope');
  assert.equal(s.name, '\\_SB_');
  const [d] = s.children;
  assert.ok(d.kind === 'device');
  assert.equal(d.name, 'DEV0');
  assert.deepEqual(d.children[0], { kind: 'name', name: '_UID', value: { kind: 'integer', value: 7n } });
  const data = d.children[1];
  assert.ok(data.kind === 'name' && data.value.kind === 'buffer');
  assert.deepEqual(data.value.value, Buffer.alloc(70, 0xaa));
});

test('a large Buffer crosses the three-byte PkgLength boundary and decodes back', () => {
  const bytes = Buffer.alloc(5000, 0x5a);
  const b = buffer(bytes); // 11, 3-byte PkgLength, 0b 88 13, data
  assert.equal(b[1] >> 6, 2);
  assert.deepEqual(b.subarray(4, 7), hex('0b 88 13'));
  const [n] = decodeAml(name('BIG_', b));
  assert.ok(n.kind === 'name' && n.value.kind === 'buffer');
  assert.equal(n.value.value.length, 5000);
});
