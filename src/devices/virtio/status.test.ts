import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Status } from './constants';
import { applyStatusWrite } from './status';

const { ACKNOWLEDGE: ACK, DRIVER, FEATURES_OK, DRIVER_OK, FAILED, DEVICE_NEEDS_RESET } = Status;
const accept = (): undefined => undefined;
const apply = (old: number, value: number, refuse: () => string | undefined = accept) => applyStatusWrite(old, value, refuse);

test('the Linux sequence, one bit per write, ends in activation', () => {
  let s = 0;
  for (const bit of [ACK, DRIVER, FEATURES_OK, DRIVER_OK]) {
    const w = apply(s, s | bit);
    assert.deepEqual(w.warnings, []);
    assert.equal(w.activate, bit === DRIVER_OK);
    s = w.status;
  }
  assert.equal(s, ACK | DRIVER | FEATURES_OK | DRIVER_OK);
});

test('several bits in one write are taken in order; a gap stops at the gap', () => {
  assert.equal(apply(0, ACK | DRIVER | FEATURES_OK).status, ACK | DRIVER | FEATURES_OK);
  const w = apply(0, ACK | FEATURES_OK);
  assert.equal(w.status, ACK);
  assert.match(w.warnings[0], /0x8 set before 0x2/);
});

test('writing 0 resets; clearing bits otherwise is ignored', () => {
  assert.deepEqual(apply(ACK | DRIVER, 0), { status: 0, reset: true, activate: false, warnings: [] });
  const w = apply(ACK | DRIVER, ACK);
  assert.equal(w.status, ACK | DRIVER);
  assert.match(w.warnings[0], /clears bits 0x2/);
});

test('a refused FEATURES_OK leaves the bit clear and blocks DRIVER_OK in the same write', () => {
  const w = apply(ACK | DRIVER, ACK | DRIVER | FEATURES_OK | DRIVER_OK, () => 'no VERSION_1');
  assert.equal(w.status, ACK | DRIVER);
  assert.equal(w.activate, false);
  assert.match(w.warnings[0], /not setting FEATURES_OK: no VERSION_1/);
});

test('FAILED can be set at any time and then only a reset helps; DEVICE_NEEDS_RESET too', () => {
  assert.equal(apply(ACK, ACK | FAILED).status, ACK | FAILED);
  assert.equal(apply(ACK | FAILED, ACK | FAILED | DRIVER).status, ACK | FAILED);
  const needs = ACK | DRIVER | FEATURES_OK | DRIVER_OK | DEVICE_NEEDS_RESET;
  assert.equal(apply(needs, needs).warnings.length, 0, 'writing back what was read is harmless');
  assert.equal(apply(needs, needs | FAILED).status, needs | FAILED, 'a driver may still give up');
  assert.equal(apply(ACK | DRIVER | FEATURES_OK | DEVICE_NEEDS_RESET, ACK | DRIVER | FEATURES_OK | DRIVER_OK).activate, false);
});

test('unknown bits are reported and ignored', () => {
  const w = apply(0, ACK | 0x30);
  assert.equal(w.status, ACK);
  assert.match(w.warnings[0], /unknown status bits 0x30/);
});
