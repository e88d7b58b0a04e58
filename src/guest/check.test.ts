import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDebianCheck } from './check';

const GOOD = [
  '[  OK  ] Reached target multi-user.target',
  'SPARKLER-CHECK pid1=systemd\r',
  'SPARKLER-CHECK state=degraded',
  'SPARKLER-CHECK failed-unit systemd-networkd.service loaded failed failed Network Configuration',
  'SPARKLER-CHECK root=ext4 rw',
  'SPARKLER-CHECK analyze Startup finished in 2.513s (kernel) + 1min 3.251s (userspace) = 1min 5.764s ',
  'SPARKLER-CHECK analyze graphical.target reached after 1min 2.998s in userspace',
  'SPARKLER-CHECK multi-user-us=65512345',
  'SPARKLER-CMD-EXIT=7',
].join('\n');

test('a degraded boot with its failed unit named, ext4 rw root and the exit code passes', () => {
  const r = parseDebianCheck(GOOD);
  assert.deepEqual(r.problems, []);
  assert.equal(r.pid1, 'systemd');
  assert.equal(r.state, 'degraded');
  assert.deepEqual(r.failedUnits, ['systemd-networkd.service loaded failed failed Network Configuration']);
  assert.equal(r.root, 'ext4 rw');
  assert.equal(r.exitCode, 7);
  assert.ok(Math.abs(r.kernelS! - 2.513) < 1e-9);
  assert.ok(Math.abs(r.userspaceS! - 63.251) < 1e-9);
  assert.ok(Math.abs(r.multiUserS! - 65.512345) < 1e-9);
});

test('each missing or wrong fact is a problem', () => {
  assert.equal(parseDebianCheck('').problems.length, 4);
  const bad = parseDebianCheck(GOOD.replace('pid1=systemd', 'pid1=init').replace('ext4 rw', 'ext4 ro')
    .replace(/SPARKLER-CHECK failed-unit.*\n/, '').replace('EXIT=7', 'EXIT=0'));
  assert.deepEqual(bad.problems, [
    'PID 1 is init, not systemd',
    'degraded, but no failed unit was listed',
    "the root filesystem is 'ext4 ro', not ext4 rw",
    "sparkler.cmd's exit code came back as 0, not 7",
  ]);
  assert.match(parseDebianCheck(GOOD.replace('state=degraded', 'state=starting')).problems[0]!, /'starting', not running or degraded/);
});
