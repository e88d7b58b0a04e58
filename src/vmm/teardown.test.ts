import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Teardown } from './teardown';

test('teardown releases last-made first, runs every step when one fails, and only once', () => {
  const order: string[] = [];
  const t = new Teardown();
  t.add('a', () => order.push('a'));
  t.add('b', () => { order.push('b'); throw new Error('b broke'); });
  t.add('c', () => order.push('c'));
  assert.throws(() => t.run(), /Releasing the VM's resources failed: b: b broke/);
  assert.deepEqual(order, ['c', 'b', 'a']);
  assert.equal(t.released, true);
  t.run();
  assert.deepEqual(order, ['c', 'b', 'a'], 'a second run does nothing');
  assert.throws(() => t.add('d', () => {}), /already torn down/);
});

test('guard releases what a failed build made and passes the error on', () => {
  const order: string[] = [];
  const t = new Teardown();
  assert.throws(() => t.guard(() => {
    t.add('a', () => order.push('a'));
    t.add('b', () => { throw new Error('b broke'); });
    throw new Error('step 3 failed');
  }), /^Error: step 3 failed \(and releasing what was built failed: Releasing the VM's resources failed: b: b broke\)$/);
  assert.deepEqual(order, ['a']);
  const ok = new Teardown();
  assert.equal(ok.guard(() => 42), 42);
  assert.equal(ok.released, false);
});
