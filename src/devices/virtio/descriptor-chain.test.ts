import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory } from '../../memory/guest-memory';
import { DescFlag, FeatureBit } from './constants';
import { featureBit, TRANSPORT_FEATURES } from './features';
import { activeQueue, HOLE, REGION_A, REGION_B, testMemory } from './testing/harness';
import { MockQueue, RawDescriptor, writeDescriptor } from './testing/mock-queue';

const { NEXT, WRITE, INDIRECT } = DescFlag;
const TABLE = 0x5000; // where tests put indirect tables

function setup(size = 8, features = TRANSPORT_FEATURES, memory: GuestMemory = testMemory()) {
  const mock = new MockQueue(memory, REGION_A + 0x1000, size);
  return { memory, mock, ...activeQueue(memory, mock, features) };
}

/**
 * Writes `descs` into the ring's table from index 0, makes descriptor 0 available, pops, and
 * returns the log. A well-formed chain after it must still come through.
 */
function dropped(descs: RawDescriptor[], opts: { size?: number; features?: bigint; memory?: GuestMemory; indirect?: RawDescriptor[][] } = {}) {
  const { queue, mock, host, memory } = setup(opts.size, opts.features, opts.memory);
  (opts.indirect ?? []).forEach((table, t) => table.forEach((d, i) => writeDescriptor(memory, TABLE + t * 0x1000, i, d)));
  descs.forEach((d, i) => mock.setDescriptor(i, d));
  mock.offer(0);
  // A good chain behind it: descriptor size-1, one writable buffer.
  const last = mock.size - 1;
  mock.setDescriptor(last, { addr: 0x9000, len: 4, flags: WRITE });
  mock.offer(last);
  const next = queue.pop();
  assert.equal(next?.head, last, 'the next good chain still comes through');
  assert.deepEqual(mock.usedElem(0), { id: 0, len: 0 }, 'the bad chain goes back to the driver with length 0');
  assert.equal(mock.usedIdx, 1);
  assert.deepEqual(host.fatals, [], 'a malformed chain does not need a device reset');
  assert.equal(host.errors.length, 1);
  return host.errors[0];
}

test('a direct chain of exactly the queue size is accepted', () => {
  const { queue, mock } = setup(4);
  mock.addChain([0, 1, 2, 3].map((i) => ({ addr: 0x8000 + i * 0x100, len: 16 })));
  assert.equal(queue.pop()?.readable.length, 4);
});

test('read() and write() gather and scatter across segments at any offset', () => {
  const { queue, mock, memory } = setup();
  memory.write(0x8000, Buffer.from('abc'));
  memory.write(0x8100, Buffer.from('defgh'));
  mock.addChain([{ addr: 0x8000, len: 3 }, { addr: 0x8100, len: 5 }, { addr: 0x9000, len: 2, write: true }, { addr: 0x9100, len: 4, write: true }]);
  const c = queue.pop()!;
  assert.equal(c.read(memory, 0, 100).toString(), 'abcdefgh');
  assert.equal(c.read(memory, 2, 3).toString(), 'cde');
  assert.equal(c.read(memory, 8, 1).length, 0);
  const into = Buffer.from('......');
  assert.equal(c.readInto(memory, 1, into.subarray(0, 4)).toString(), 'bcde', 'readInto fills the buffer given, across segments');
  assert.equal(c.readInto(memory, 6, into).toString(), 'ghde..', 'past the end the bytes stay as they were');
  assert.equal(c.write(memory, 1, Buffer.from('WXYZ!!')), 5, 'only 5 writable bytes from offset 1');
  assert.equal(memory.read(0x9000, 2).toString('latin1'), '\0W');
  assert.equal(memory.read(0x9100, 4).toString(), 'XYZ!');
});

test('indirect tables: alone, and after direct descriptors (spec 2.7.5.3.2)', () => {
  const { queue, mock, memory } = setup();
  mock.addIndirectChain(TABLE, [{ addr: 0x8000, len: 8 }, { addr: 0x9000, len: 8, write: true }]);
  const a = queue.pop()!;
  assert.deepEqual([a.readableBytes, a.writableBytes], [8, 8]);
  writeDescriptor(memory, TABLE + 0x100, 0, { addr: 0x9000, len: 32, flags: WRITE });
  mock.setDescriptor(4, { addr: 0x8000, len: 16, flags: NEXT, next: 5 });
  mock.setDescriptor(5, { addr: TABLE + 0x100, len: 16, flags: INDIRECT | WRITE }); // WRITE on the table is ignored
  mock.offer(4);
  const b = queue.pop()!;
  assert.deepEqual([b.readableBytes, b.writableBytes, b.head], [16, 32, 4]);
});

test('hostile: a descriptor loop', () => {
  assert.match(dropped([{ addr: 0x8000, len: 1, flags: NEXT, next: 1 }, { addr: 0x8000, len: 1, flags: NEXT, next: 0 }]), /more than 8 descriptors .* loop/);
});

test('hostile: a descriptor pointing at itself', () => {
  assert.match(dropped([{ addr: 0x8000, len: 1, flags: NEXT, next: 0 }]), /loop/);
});

test('hostile: a chain longer than the queue size (next runs off the table)', () => {
  assert.match(dropped([{ addr: 0x8000, len: 1, flags: NEXT, next: 8 }]), /descriptor 8 is past the end of a table of 8/);
});

test('hostile: a loop inside an indirect table', () => {
  const table = [{ addr: 0x8000, len: 1, flags: NEXT, next: 1 }, { addr: 0x8000, len: 1, flags: NEXT, next: 0 }];
  assert.match(dropped([{ addr: TABLE, len: 32, flags: INDIRECT }], { indirect: [table] }), /more than 2 descriptors .* loop/);
});

test('hostile: an indirect table inside an indirect table', () => {
  const outer = [{ addr: TABLE + 0x1000, len: 16, flags: INDIRECT }];
  const inner = [{ addr: 0x8000, len: 1 }];
  assert.match(dropped([{ addr: TABLE, len: 16, flags: INDIRECT }], { indirect: [outer, inner] }), /indirect table from inside an indirect table/);
});

test('hostile: indirect table lengths that are 0 or not a multiple of 16', () => {
  assert.match(dropped([{ addr: TABLE, len: 24, flags: INDIRECT }]), /length of 24, not a non-zero multiple of 16/);
  assert.match(dropped([{ addr: TABLE, len: 0, flags: INDIRECT }]), /length of 0/);
});

test('hostile: INDIRECT with NEXT, INDIRECT without the feature, an oversized indirect table', () => {
  assert.match(dropped([{ addr: TABLE, len: 16, flags: INDIRECT | NEXT, next: 1 }]), /both INDIRECT and NEXT/);
  const noIndirect = TRANSPORT_FEATURES & ~featureBit(FeatureBit.RING_INDIRECT_DESC);
  assert.match(dropped([{ addr: TABLE, len: 16, flags: INDIRECT }], { features: noIndirect }), /INDIRECT_DESC was not negotiated/);
  assert.match(dropped([{ addr: TABLE, len: 257 * 16, flags: INDIRECT }]), /257 entries, more than 256/);
});

test('hostile: an indirect table outside guest RAM or straddling two regions', () => {
  assert.match(dropped([{ addr: HOLE, len: 16, flags: INDIRECT }]), /indirect table at 0x20000 .* outside guest RAM/);
  assert.match(dropped([{ addr: REGION_B - 16, len: 32, flags: INDIRECT }]), /straddles two regions/);
});

test('hostile: buffers outside guest RAM, straddling two regions, or beyond 2^53', () => {
  assert.match(dropped([{ addr: HOLE + 0x100, len: 4 }]), /buffer at 0x20100 \(\+4\) is outside guest RAM/);
  assert.match(dropped([{ addr: REGION_B - 8, len: 16, flags: WRITE }]), /straddles two regions/);
  assert.match(dropped([{ addr: 1n << 56n, len: 4 }]), /at 0x100000000000000 is outside guest RAM/);
  assert.match(dropped([{ addr: 0x8000, len: 0x10_0000 }]), /outside guest RAM/);
});

test('hostile: an address range that wraps past 2^64', () => {
  assert.match(dropped([{ addr: 0xffff_ffff_ffff_fff0n, len: 0x20 }]), /wraps past the end of the 64-bit address space/);
  assert.match(dropped([{ addr: HOLE + 0x100, len: 0 }]), /outside guest RAM/, 'even an empty buffer must point into RAM');
});

test('hostile: buffer lengths that add up past 32 bits', () => {
  // 256 entries of 16 MiB each, all over the same RAM: 4 GiB in total, every single one in range.
  const big = 0x100_0000;
  const memory = GuestMemory.fromLayout([{ start: 0, size: 0x10000 }, { start: big, size: big }]);
  const table = Array.from({ length: 256 }, (_, i) => ({ addr: big, len: big, flags: WRITE | (i < 255 ? NEXT : 0), next: i + 1 }));
  assert.match(dropped([{ addr: TABLE, len: 256 * 16, flags: INDIRECT }], { memory, indirect: [table] }), /add up to 4 GiB or more/);
});

test('hostile: a device-readable buffer after a device-writable one', () => {
  assert.match(dropped([{ addr: 0x9000, len: 4, flags: WRITE | NEXT, next: 1 }, { addr: 0x8000, len: 4 }]), /device-readable but follows a device-writable/);
});

test('hostile: the driver rewrites a descriptor after the chain was popped', () => {
  const { queue, mock, memory } = setup();
  mock.addChain([{ addr: 0x9000, len: 8, write: true }]);
  const chain = queue.pop()!;
  mock.setDescriptor(0, { addr: HOLE, len: 0x1000, flags: WRITE });
  assert.equal(chain.write(memory, 0, Buffer.alloc(64, 1)), 8, 'the device uses what it validated, not the new descriptor');
});
