import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CoalescedRing, RING_ENTRY_SIZE, RING_HEADER_SIZE, ringCapacity } from './coalesced-ring';

/** A ring page as KVM writes it: entries at `slots`, then `first` and `last`. */
function ringPage(first: number, entries: Array<{ slot: number; address: number; pio: boolean; data: number[] }>, last: number): Buffer {
  const page = Buffer.alloc(4096);
  page.writeUInt32LE(first, 0);
  page.writeUInt32LE(last, 4);
  for (const e of entries) {
    const at = RING_HEADER_SIZE + e.slot * RING_ENTRY_SIZE;
    page.writeBigUInt64LE(BigInt(e.address), at);
    page.writeUInt32LE(e.data.length, at + 8);
    page.writeUInt32LE(e.pio ? 1 : 0, at + 12);
    Buffer.from(e.data).copy(page, at + 16);
  }
  return page;
}

const collect = (ring: CoalescedRing) => {
  const seen: string[] = [];
  const n = ring.drain((pio, address, data) => seen.push(`${pio ? 'pio' : 'mmio'}:${address.toString(16)}:${data.toString('hex')}`));
  return { n, seen };
};

test('the ring holds (4096 - 8) / 24 entries, as KVM_COALESCED_MMIO_MAX', () => {
  assert.equal(ringCapacity(4096), 170);
});

test('queued writes are applied oldest first, across the wrap, and their slots freed', () => {
  const page = ringPage(169, [
    { slot: 169, address: 0x3f8, pio: true, data: [0x61] },
    { slot: 0, address: 0x3f8, pio: true, data: [0x62] },
    { slot: 1, address: 0xd000_0000, pio: false, data: [1, 2, 3, 4] },
  ], 2);
  const ring = new CoalescedRing(page);
  assert.deepEqual(collect(ring), { n: 3, seen: ['pio:3f8:61', 'pio:3f8:62', 'mmio:d0000000:01020304'] });
  assert.equal(page.readUInt32LE(0), 2, 'first caught up with last');
  assert.deepEqual(collect(ring), { n: 0, seen: [] }, 'nothing is applied twice');
});

test('a device that throws loses that write only; indices out of range are left alone', () => {
  const page = ringPage(0, [{ slot: 0, address: 0x3f8, pio: true, data: [1] }, { slot: 1, address: 0x3f8, pio: true, data: [2] }], 2);
  const ring = new CoalescedRing(page);
  assert.throws(() => ring.drain(() => { throw new Error('device'); }), /device/);
  assert.equal(page.readUInt32LE(0), 1, 'the failed write was consumed');
  assert.deepEqual(collect(ring), { n: 1, seen: ['pio:3f8:02'] });
  assert.deepEqual(collect(new CoalescedRing(ringPage(0, [], 500))), { n: 0, seen: [] });
  // A length above the 8 data bytes is cut to them.
  const long = ringPage(0, [{ slot: 0, address: 0x3f8, pio: true, data: [1, 2, 3, 4, 5, 6, 7, 8] }], 1);
  long.writeUInt32LE(64, RING_HEADER_SIZE + 8);
  assert.deepEqual(collect(new CoalescedRing(long)), { n: 1, seen: ['pio:3f8:0102030405060708'] });
});
