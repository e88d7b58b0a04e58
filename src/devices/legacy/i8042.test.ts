import { test } from 'node:test';
import assert from 'node:assert/strict';
import { I8042 } from './i8042';
import { SparklerError } from '../../errors';

const DATA = 0, CMD = 4;

function setup() {
  const irq = { count: 0, trigger() { this.count++; } };
  let resets = 0;
  const kbd = new I8042(irq, () => resets++);
  const rd = (off: number): number => { const b = Buffer.alloc(1); kbd.read(off, b); return b[0]; };
  const wr = (off: number, v: number): void => kbd.write(off, Buffer.of(v));
  const drain = (): number[] => {
    const bytes: number[] = [];
    while (rd(CMD) & 0x01) bytes.push(rd(DATA));
    return bytes;
  };
  return { kbd, irq, rd, wr, drain, resets: () => resets };
}

test('status: empty output buffer, system flag, keyboard not inhibited, IBF never set', () => {
  const { rd } = setup();
  assert.equal(rd(CMD), 0x14);
});

test('controller self test and interface tests', () => {
  const { wr, drain, rd } = setup();
  wr(CMD, 0xaa);
  assert.equal(rd(CMD) & 0x09, 0x09, 'OBF, last write was a command');
  assert.deepEqual(drain(), [0x55]);
  wr(CMD, 0xab);
  wr(CMD, 0xa9);
  assert.deepEqual(drain(), [0x00, 0x00]);
});

test('control byte: read, write, and the port enable/disable commands', () => {
  const { wr, drain } = setup();
  wr(CMD, 0x20);
  assert.deepEqual(drain(), [0x05], 'KBDINT | SYSFLAG, translation off');
  wr(CMD, 0x60);
  wr(DATA, 0x47);
  wr(CMD, 0x20);
  assert.deepEqual(drain(), [0x47]);
  wr(CMD, 0xad);
  wr(CMD, 0xa7);
  wr(CMD, 0x20);
  assert.deepEqual(drain(), [0x77]);
  wr(CMD, 0xae);
  wr(CMD, 0xa8);
  wr(CMD, 0x20);
  assert.deepEqual(drain(), [0x47]);
});

test('0xFE pulses the reset line (reboot=k); 0xFF does not', () => {
  const { wr, resets } = setup();
  wr(CMD, 0xff);
  assert.equal(resets(), 0);
  wr(CMD, 0xfe);
  assert.equal(resets(), 1);
});

test('0xD2 and 0xD3 put a byte in the output buffer as from the keyboard / aux port', () => {
  const { wr, rd } = setup();
  wr(CMD, 0xd2);
  wr(DATA, 0x99);
  assert.equal(rd(CMD) & 0x21, 0x01);
  assert.equal(rd(DATA), 0x99);
  wr(CMD, 0xd3);
  wr(DATA, 0x5a);
  assert.equal(rd(CMD) & 0x21, 0x21, 'AUXDATA set: Linux accepts its aux loop test');
  assert.equal(rd(DATA), 0x5a);
});

test('keyboard commands are acknowledged as atkbd expects', () => {
  const { kbd, wr, drain } = setup();
  wr(DATA, 0xff);
  assert.deepEqual(drain(), [0xfa, 0xaa], 'reset: ACK, BAT passed');
  wr(DATA, 0xf2);
  assert.deepEqual(drain(), [0xfa, 0xab, 0x83], 'get ID: MF2 keyboard');
  wr(DATA, 0xed);
  wr(DATA, 0x02);
  assert.deepEqual(drain(), [0xfa, 0xfa], 'set LEDs and its parameter');
  assert.equal(kbd.leds, 2);
  wr(DATA, 0xf0);
  wr(DATA, 0x00);
  assert.deepEqual(drain(), [0xfa, 0xfa, 0x02], 'get scancode set');
  wr(DATA, 0xf5);
  assert.equal(kbd.scanning, false);
  wr(DATA, 0xf4);
  assert.equal(kbd.scanning, true);
  wr(DATA, 0xf3);
  wr(DATA, 0x20);
  assert.deepEqual(drain(), [0xfa, 0xfa, 0xfa, 0xfa]);
  wr(DATA, 0xee);
  assert.deepEqual(drain(), [0xee], 'echo');
  wr(DATA, 0xea);
  assert.deepEqual(drain(), [0xfe], 'unknown command: resend');
});

test('IRQ 1: one edge per byte reaching the head while KBDINT is set', () => {
  const { irq, wr, rd } = setup();
  wr(DATA, 0xf2); // three reply bytes
  assert.equal(irq.count, 1);
  rd(DATA);
  assert.equal(irq.count, 2);
  rd(DATA);
  assert.equal(irq.count, 3);
  rd(DATA);
  assert.equal(irq.count, 3, 'buffer empty');
  wr(CMD, 0x60);
  wr(DATA, 0x04); // KBDINT off
  wr(DATA, 0xf4);
  assert.equal(irq.count, 3);
  wr(CMD, 0x60);
  wr(DATA, 0x05); // KBDINT on with a byte waiting
  assert.equal(irq.count, 4);
});

test('Ctrl-Alt-Del: set 2 make codes with an IRQ, set 1 when translation is on', () => {
  const { kbd, irq, wr, drain } = setup();
  kbd.triggerCtrlAltDel();
  assert.equal(irq.count, 1);
  assert.deepEqual(drain(), [0x14, 0x11, 0xe0, 0x71]);
  wr(CMD, 0x60);
  wr(DATA, 0x45);
  kbd.triggerCtrlAltDel();
  assert.deepEqual(drain(), [0x1d, 0x38, 0xe0, 0x53]);
});

test('Ctrl-Alt-Del refuses when the output buffer is too full', () => {
  const { kbd } = setup();
  kbd.triggerCtrlAltDel();
  kbd.triggerCtrlAltDel();
  kbd.triggerCtrlAltDel();
  kbd.triggerCtrlAltDel();
  assert.throws(() => kbd.triggerCtrlAltDel(), (e: unknown) => e instanceof SparklerError && e.code === 'EI8042FULL');
});
