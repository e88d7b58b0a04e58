import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FeatureBit } from './constants';
import { featureBit, TRANSPORT_FEATURES } from './features';
import { needsEvent, Queue } from './queue';
import { activeQueue, HOLE, REGION_A, REGION_B, REGION_C, testMemory } from './testing/harness';
import { MockQueue } from './testing/mock-queue';

const NO_EVENT_IDX = TRANSPORT_FEATURES & ~featureBit(FeatureBit.RING_EVENT_IDX);

function setup(size = 16, features = TRANSPORT_FEATURES) {
  const memory = testMemory();
  const mock = new MockQueue(memory, REGION_A + 0x1000, size);
  return { memory, mock, ...activeQueue(memory, mock, features) };
}

test('pop returns chains in the order made available, with readable then writable segments', () => {
  const { queue, mock } = setup();
  const a = mock.addChain([{ addr: 0x8000, len: 10 }, { addr: 0x8100, len: 20 }, { addr: 0x9000, len: 30, write: true }]);
  const b = mock.addChain([{ addr: 0x9100, len: 5, write: true }]);
  const first = queue.pop();
  assert.equal(first?.head, a);
  assert.deepEqual(first?.readable, [{ addr: 0x8000, len: 10 }, { addr: 0x8100, len: 20 }]);
  assert.deepEqual(first?.writable, [{ addr: 0x9000, len: 30 }]);
  assert.deepEqual([first?.readableBytes, first?.writableBytes], [30, 30]);
  assert.equal(queue.pop()?.head, b);
  assert.equal(queue.pop(), undefined);
  assert.equal(queue.nextAvail, 2);
});

test('addUsed writes the element and then used.idx; the driver sees each in order', () => {
  const { queue, mock } = setup(4);
  for (let i = 0; i < 6; i++) {
    const head = mock.addChain([{ addr: 0x9000, len: 8, write: true }]);
    const chain = queue.pop();
    assert.equal(chain?.head, head);
    queue.addUsed(head, 100 + i);
    assert.equal(mock.usedIdx, i + 1);
    assert.deepEqual(mock.usedElem(i), { id: head, len: 100 + i });
  }
});

test('ring indices wrap at 2^16 without losing a chain', () => {
  const { queue, mock } = setup(2, NO_EVENT_IDX);
  for (let i = 0; i < 65_540; i++) {
    mock.addChain([{ addr: 0x9000, len: 1, write: true }]);
    const chain = queue.pop();
    assert.ok(chain, `chain ${i}`);
    queue.addUsed(chain.head, 1);
  }
  assert.equal(queue.nextAvail, 65_540 & 0xffff);
  assert.equal(mock.usedIdx, 65_540 & 0xffff);
  assert.equal(queue.pop(), undefined);
});

test('vring_need_event: exact boundaries, including across the 16-bit wrap', () => {
  assert.equal(needsEvent(0, 1, 0), true, 'used_event 0, first entry');
  assert.equal(needsEvent(0, 3, 1), false, 'already past used_event before this batch');
  assert.equal(needsEvent(4, 4, 3), false, 'reaching used_event is not passing it');
  assert.equal(needsEvent(4, 5, 4), true, 'the entry at used_event');
  assert.equal(needsEvent(6, 8, 5), true, 'a batch that crosses used_event');
  assert.equal(needsEvent(65535, 1, 65534), true, 'wrap: crossing 65535');
  assert.equal(needsEvent(2, 1, 65534), false, 'wrap: not there yet');
  assert.equal(needsEvent(5, 5, 5), false, 'nothing added');
});

test('EVENT_IDX: used-buffer notifications follow used_event exactly, and avail.flags is ignored', () => {
  const { queue, mock } = setup(8);
  const cycle = (n: number): boolean => {
    for (let i = 0; i < n; i++) {
      mock.addChain([{ addr: 0x9000, len: 1, write: true }]);
      const c = queue.pop();
      assert.ok(c);
      queue.addUsed(c.head, 1);
    }
    return queue.needsNotification();
  };
  mock.availFlags = 1; // NO_INTERRUPT means nothing once EVENT_IDX is negotiated (spec 2.7.7)
  mock.usedEvent = 0;
  assert.equal(cycle(1), true, 'used.idx 0 -> 1 passes used_event 0');
  assert.equal(cycle(2), false, 'used.idx 1 -> 3, used_event still 0');
  mock.usedEvent = 4;
  assert.equal(cycle(1), false, 'used.idx 3 -> 4: entry 4 not yet used');
  assert.equal(cycle(1), true, 'used.idx 4 -> 5: entry 4 used');
  mock.usedEvent = 6;
  assert.equal(cycle(3), true, 'used.idx 5 -> 8 crosses 6 in one batch');
  assert.equal(queue.needsNotification(), false, 'no new entries since the last check');
});

test('EVENT_IDX: the device publishes avail_event = the next index it will read', () => {
  const { queue, mock } = setup(8);
  assert.equal(mock.availEvent, 0);
  mock.addChain([{ addr: 0x9000, len: 1, write: true }]);
  mock.addChain([{ addr: 0x9000, len: 1, write: true }]);
  queue.pop();
  assert.equal(mock.availEvent, 1);
  queue.pop();
  assert.equal(mock.availEvent, 2);
});

test('without EVENT_IDX, avail.flags NO_INTERRUPT suppresses and nothing new means no notification', () => {
  const { queue, mock } = setup(8, NO_EVENT_IDX);
  assert.equal(queue.needsNotification(), false);
  mock.addChain([{ addr: 0x9000, len: 1, write: true }]);
  queue.addUsed(queue.pop()!.head, 1);
  assert.equal(queue.needsNotification(), true);
  mock.availFlags = 1;
  mock.addChain([{ addr: 0x9000, len: 1, write: true }]);
  queue.addUsed(queue.pop()!.head, 1);
  assert.equal(queue.needsNotification(), false);
  assert.equal(mock.availEvent, 0, 'avail_event is not written without EVENT_IDX');
});

test('validate explains every unusable configuration', () => {
  const memory = testMemory();
  const q = new Queue(256);
  const place = (desc: bigint, avail: bigint, used: bigint, size = 16): string | undefined => {
    Object.assign(q, { descTable: desc, availRing: avail, usedRing: used, size, ready: true });
    return q.validate(memory);
  };
  assert.equal(place(0x1000n, 0x2000n, 0x3000n), undefined);
  assert.equal(place(0x1000n, 0x2000n, 0x3000n, 256), undefined);
  assert.match(place(0x1000n, 0x2000n, 0x3000n, 3) ?? '', /size 3 is not a power of two/);
  assert.match(place(0x1000n, 0x2000n, 0x3000n, 0) ?? '', /size 0/);
  assert.match(place(0x1000n, 0x2000n, 0x3000n, 512) ?? '', /size 512/);
  assert.match(place(0x1008n, 0x2000n, 0x3000n) ?? '', /descriptor table .* not 16-byte aligned/);
  assert.match(place(0x1000n, 0x2001n, 0x3000n) ?? '', /available ring .* not 2-byte aligned/);
  assert.match(place(0x1000n, 0x2000n, 0x3002n) ?? '', /used ring .* not 4-byte aligned/);
  assert.match(place(BigInt(HOLE), 0x2000n, 0x3000n) ?? '', /descriptor table .* outside guest RAM/);
  assert.match(place(0x1000n, BigInt(REGION_B - 8), 0x3000n) ?? '', /available ring .* straddles/);
  assert.match(place(0x1000n, 0x2000n, BigInt(REGION_C + 0x10000 - 8)) ?? '', /used ring .* outside guest RAM/);
  assert.match(place(1n << 60n, 0x2000n, 0x3000n) ?? '', /outside guest RAM/);
  assert.match(place(0xffff_ffff_ffff_ff80n, 0x2000n, 0x3000n) ?? '', /wraps past the end of the 64-bit address space/);
  q.ready = false;
  assert.match(q.validate(memory) ?? '', /not ready/);
});

test('reset forgets the rings: pop and addUsed do nothing until activated again', () => {
  const { queue, mock } = setup();
  mock.addChain([{ addr: 0x9000, len: 1, write: true }]);
  queue.reset();
  assert.equal(queue.pop(), undefined);
  queue.addUsed(0, 1);
  assert.equal(mock.usedIdx, 0);
  assert.equal(queue.needsNotification(), false);
});
