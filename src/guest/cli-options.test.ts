import { test } from 'node:test';
import assert from 'node:assert/strict';
import { optionMisuse } from './cli';

test('the guest options that go together are accepted', () => {
  assert.equal(optionMisuse('kernel', {}), undefined);
  assert.equal(optionMisuse('kernel', { bzimage: true }), undefined);
  assert.equal(optionMisuse('kernel', { debian: true }), undefined);
  assert.equal(optionMisuse('initrd', { debian: true }), undefined);
  assert.equal(optionMisuse('rootfs', { tools: true }), undefined);
  assert.equal(optionMisuse('rootfs', { debian: true, size: '1024' }), undefined);
  assert.equal(optionMisuse('check', { debian: true, qemu: true }), undefined);
});

test('options that do not go together are refused with a sentence', () => {
  const cases: [string, Parameters<typeof optionMisuse>[1], RegExp][] = [
    ['initrd', { bzimage: true }, /--bzimage goes with kernel only/],
    ['kernel', { bzimage: true, debian: true }, /bzImage already/],
    ['paths', { debian: true }, /--debian goes with kernel, initrd, rootfs or check/],
    ['kernel', { tools: true }, /--tools goes with rootfs only/],
    ['rootfs', { tools: true, debian: true }, /pick one/],
    ['rootfs', { size: '100' }, /--size goes with rootfs --debian only/],
    ['rootfs', { debian: true, size: '1.5G' }, /whole number of MiB, not '1\.5G'/],
    ['rootfs', { debian: true, size: '0' }, /whole number of MiB/],
    ['check', {}, /check needs --debian/],
    ['rootfs', { debian: true, qemu: true }, /--qemu goes with check --debian only/],
  ];
  for (const [command, values, message] of cases) {
    const why = optionMisuse(command, values);
    assert.ok(why !== undefined, `${command} ${JSON.stringify(values)} is refused`);
    assert.match(why, message);
    assert.match(why, /\.$/);
  }
});
