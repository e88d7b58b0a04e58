import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CmdlineError } from './errors';
import { KernelCmdline } from './cmdline';

test('builds a space-separated line with key=value parameters', () => {
  const c = new KernelCmdline()
    .append('console=ttyS0 reboot=k')
    .set('panic', 1)
    .set('pci', 'off')
    .set('ro')
    .set('virtio_mmio.device', '4K@0xc0001000:5');
  assert.equal(c.toString(), 'console=ttyS0 reboot=k panic=1 pci=off ro virtio_mmio.device=4K@0xc0001000:5');
  assert.ok(c.has('pci'));
  assert.ok(c.has('ro'));
  assert.ok(!c.has('reboot=x'));
  const b = c.toBuffer();
  assert.equal(b[b.length - 1], 0);
  assert.equal(b.length, c.toString().length + 1);
});

test('values with spaces are quoted; quotes, NULs and control characters are refused', () => {
  assert.equal(new KernelCmdline().set('init.args', 'a b').toString(), 'init.args="a b"');
  assert.equal(new KernelCmdline().set('empty', '').toString(), 'empty=""');
  assert.throws(() => new KernelCmdline().set('k', 'say "hi"'), /double quote/);
  assert.throws(() => new KernelCmdline().set('k', 'a\0b'), /NUL/);
  assert.throws(() => new KernelCmdline().set('k', 'a\nb'), /printable ASCII/);
  assert.throws(() => new KernelCmdline().set('k', 'é'), /printable ASCII/);
  assert.throws(() => new KernelCmdline().set('a b', '1'), /not a valid kernel parameter name/);
  assert.throws(() => new KernelCmdline().set('a=b', '1'), /not a valid kernel parameter name/);
  assert.throws(() => new KernelCmdline().set('', '1'), CmdlineError);
  assert.throws(() => new KernelCmdline().append('init="/bin/sh'), /unbalanced double quote/);
  assert.equal(new KernelCmdline().append('  ').append('x').toString(), 'x');
});

test('at most 2048 bytes including the NUL; the error gives the limit and the length', () => {
  const fits = KernelCmdline.from('a'.repeat(2047));
  assert.equal(fits.toBuffer().length, 2048);
  assert.throws(() => KernelCmdline.from('a'.repeat(2048)), (e: unknown) =>
    e instanceof CmdlineError && e.code === 'ECMDLINE'
    && e.message === 'The kernel command line would be 2049 bytes including its terminating NUL, more than the 2048 bytes allowed.');
  const c = KernelCmdline.from('a'.repeat(2040));
  assert.throws(() => c.set('panic', 1), /2049 bytes/);
  assert.equal(c.toString().length, 2040, 'a refused append leaves the line unchanged');
  assert.throws(() => new KernelCmdline(10).append('0123456789'), /more than the 10 bytes/);
});
