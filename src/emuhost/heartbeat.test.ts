import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeartbeatWatch, parseBeat } from './heartbeat';

const limits = { silentMs: 10_000, frozenMs: 6_000 };

test('parseBeat reads uptime, VMs and exits, and refuses a torn line', () => {
  assert.deepEqual(parseBeat('12.50 2 3456\n'), { uptime: 12.5, vms: 2, exits: 3456 });
  assert.equal(parseBeat('12.50 2'), undefined);
  assert.equal(parseBeat(''), undefined);
});

test('a beating host whose guests exit is never stalled', () => {
  const w = new HeartbeatWatch(limits);
  for (let t = 0; t <= 60_000; t += 2000) assert.equal(w.look(`${t / 1000} 1 ${t * 3}`, t), undefined);
});

test('a heartbeat that stops changing is a silent host once silentMs have passed', () => {
  const w = new HeartbeatWatch(limits);
  assert.equal(w.look('5.0 0 0', 0), undefined);
  assert.equal(w.look('5.0 0 0', 9_000), undefined);
  assert.equal(w.look('5.0 0 0', 10_000)?.kind, 'silent');
});

test('no heartbeat file yet is no evidence of anything', () => {
  const w = new HeartbeatWatch(limits);
  assert.equal(w.look(undefined, 0), undefined);
  assert.equal(w.look(undefined, 100_000), undefined);
});

test('VMs whose exit count stands still for frozenMs are frozen; without VMs a still count is fine', () => {
  const w = new HeartbeatWatch(limits);
  for (let t = 0; t <= 20_000; t += 2000) assert.equal(w.look(`${t} 0 0`, t), undefined, 'no VM: nothing to judge');
  assert.equal(w.look('22 1 500', 22_000), undefined);
  assert.equal(w.look('24 1 500', 24_000), undefined);
  assert.equal(w.look('26 1 500', 26_000), undefined);
  const stall = w.look('28 1 500', 28_000);
  assert.equal(stall?.kind, 'frozen');
  assert.match(stall!.why, /1 VM that made no exit for 6 s/);
});

test('the frozen clock starts again when the VMs go away and come back', () => {
  const w = new HeartbeatWatch(limits);
  assert.equal(w.look('0 1 500', 0), undefined);
  assert.equal(w.look('4 1 500', 4_000), undefined);
  assert.equal(w.look('5 0 0', 5_000), undefined);
  assert.equal(w.look('6 1 500', 6_000), undefined);
  assert.equal(w.look('11 1 500', 11_000), undefined);
  assert.equal(w.look('12 1 500', 12_000)?.kind, 'frozen');
});

test('frozen is timed by the host\'s own uptime: a beat held back on its way (9p traffic) is not frozen', () => {
  const w = new HeartbeatWatch(limits);
  assert.equal(w.look('100 1 500', 0), undefined);
  // The same beat seen for 9 s of the runner's clock: late, not frozen (silent comes at 10 s).
  for (let t = 1000; t < 10_000; t += 1000) assert.equal(w.look('100 1 500', t), undefined);
  // Then the held-back beats arrive: 2 s of uptime passed, the count moved.
  assert.equal(w.look('102 1 530', 10_500), undefined);
  assert.equal(w.look('107 1 530', 11_000), undefined);
  assert.equal(w.look('108 1 530', 12_000)?.kind, 'frozen');
});
