/** The serial device's fast-path rules (Serial.onFastRules) follow its registers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Serial, SerialFastRules } from './serial';

const COM1 = { LSR: 5, THR: 0, IER: 1, LCR: 3, MCR: 4, RBR: 0 };

function uart(): { s: Serial; rules: SerialFastRules[]; out: number[] } {
  const out: number[] = [];
  const s = new Serial({ trigger: () => {} }, (b) => out.push(...b));
  const rules: SerialFastRules[] = [];
  s.onFastRules((r) => rules.push(r));
  return { s, rules, out };
}

test('nothing is fast until the guest polls LSR; then the LSR constant and THR queuing are', () => {
  const { s, rules } = uart();
  assert.deepEqual(rules, [{ lsr: undefined, thr: false }]);
  s.write(COM1.THR, Buffer.of(0x41));
  assert.equal(rules.length, 1, 'writes without polling change nothing');
  const b = Buffer.alloc(1);
  s.read(COM1.LSR, b);
  assert.equal(b[0], 0x60);
  assert.deepEqual(rules.at(-1), { lsr: 0x60, thr: true });
});

test('THRE interrupts, DLAB and loopback take THR writes back; input and overrun take LSR back', () => {
  const { s, rules } = uart();
  s.read(COM1.LSR, Buffer.alloc(1));
  s.write(COM1.IER, Buffer.of(0x02));
  assert.deepEqual(rules.at(-1), { lsr: 0x60, thr: false });
  s.write(COM1.IER, Buffer.of(0x00));
  assert.deepEqual(rules.at(-1), { lsr: 0x60, thr: true });
  s.write(COM1.LCR, Buffer.of(0x83));
  assert.deepEqual(rules.at(-1), { lsr: 0x60, thr: false }, 'DLAB: offset 0 is the divisor latch');
  s.write(COM1.LCR, Buffer.of(0x03));
  assert.equal(rules.at(-1)!.thr, true);
  s.enqueueInput(Buffer.from('x'));
  assert.deepEqual(rules.at(-1), { lsr: undefined, thr: true }, 'data ready: LSR must say so');
  s.read(COM1.RBR, Buffer.alloc(1));
  assert.deepEqual(rules.at(-1), { lsr: 0x60, thr: true });
  s.write(COM1.MCR, Buffer.of(0x10 | 0x08));
  assert.equal(rules.at(-1)!.thr, false, 'loopback: THR feeds the receiver');
});

test('restoring a saved state re-computes the rules', () => {
  const a = uart();
  a.s.read(COM1.LSR, Buffer.alloc(1));
  const saved = a.s.saveState();
  const b = uart();
  b.s.restoreState(saved);
  assert.deepEqual(b.rules.at(-1), { lsr: 0x60, thr: true });
});
