import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Serial } from './serial';

// Register offsets from 0x3f8.
const THR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;

function setup(options = {}) {
  const irq = { count: 0, trigger() { this.count++; } };
  const out: Buffer[] = [];
  const uart = new Serial(irq, (b) => out.push(b), options);
  const rd = (off: number): number => { const b = Buffer.alloc(1); uart.read(off, b); return b[0]; };
  const wr = (off: number, v: number): void => uart.write(off, Buffer.of(v));
  return { uart, irq, out, rd, wr, text: () => Buffer.concat(out).toString('latin1') };
}

test('THR writes go to the sink and count bytes out', () => {
  const { uart, wr, text } = setup();
  for (const c of Buffer.from('hi\n')) wr(THR, c);
  assert.equal(text(), 'hi\n');
  assert.equal(uart.bytesOut, 3);
});

test('scheduleFlush coalesces a burst into one sink call', () => {
  let pending: (() => void) | undefined;
  const { out, wr } = setup({ scheduleFlush: (f: () => void) => { pending = f; } });
  for (const c of Buffer.from('burst')) wr(THR, c);
  assert.equal(out.length, 0);
  pending!();
  assert.deepEqual(out, [Buffer.from('burst')]);
});

/** A scheduleFlush that records what is pending and whether it was cancelled. */
function fakeScheduler() {
  const calls: { run: () => void; cancelled: boolean }[] = [];
  const schedule = (run: () => void) => {
    const call = { run, cancelled: false };
    calls.push(call);
    return () => { call.cancelled = true; };
  };
  return { calls, schedule, live: () => calls.filter((c) => !c.cancelled) };
}

test('one flush is pending at a time, however long the burst', () => {
  const s = fakeScheduler();
  const { out, wr } = setup({ scheduleFlush: s.schedule });
  for (let i = 0; i < 1000; i++) wr(THR, 0x61);
  assert.equal(s.calls.length, 1);
  assert.equal(out.length, 0);
  s.calls[0].run();
  assert.deepEqual(out, [Buffer.alloc(1000, 0x61)]);
  wr(THR, 0x62);
  assert.equal(s.calls.length, 2, 'the next byte schedules the next flush');
});

test('a full 4 KiB batch goes out at once; the rest waits for the pending flush', () => {
  const s = fakeScheduler();
  const { out, wr } = setup({ scheduleFlush: s.schedule });
  for (let i = 0; i < 4096 + 10; i++) wr(THR, i & 0x7f);
  assert.equal(out.length, 1);
  assert.equal(out[0].length, 4096);
  assert.equal(s.calls[0].cancelled, true, 'the batch flush cancels the pending one');
  assert.equal(s.live().length, 1, 'the 10 bytes after it have their own');
  s.live()[0].run();
  assert.equal(out.length, 2);
  assert.equal(out[1].length, 10);
});

test('flush() (VM stop, a log line) hands the bytes out now and cancels the pending flush', () => {
  const s = fakeScheduler();
  const { uart, out, wr } = setup({ scheduleFlush: s.schedule });
  for (const c of Buffer.from('before the log line')) wr(THR, c);
  uart.flush();
  assert.deepEqual(out, [Buffer.from('before the log line')]);
  assert.equal(s.calls[0].cancelled, true);
  uart.flush();
  assert.equal(out.length, 1, 'nothing more to flush');
  wr(THR, 0x21);
  assert.equal(s.calls.length, 2, 'a new burst schedules again');
});

test('the sink gets its own copy of each batch', () => {
  const s = fakeScheduler();
  const { uart, out, wr } = setup({ scheduleFlush: s.schedule });
  wr(THR, 0x41);
  uart.flush();
  wr(THR, 0x42);
  uart.flush();
  assert.deepEqual(out.map((b) => b.toString()), ['A', 'B']);
});

test('DLAB switches offsets 0 and 1 to the divisor latch', () => {
  const { rd, wr } = setup();
  assert.equal(rd(LCR) & 0x80, 0);
  wr(LCR, 0x83);
  assert.equal(rd(THR), 12, 'default divisor 12 = 9600 baud');
  wr(THR, 0x01); // DLL
  wr(IER, 0x00); // DLM
  assert.equal(rd(THR), 0x01);
  assert.equal(rd(IER), 0x00);
  wr(LCR, 0x03);
  wr(IER, 0x05);
  assert.equal(rd(IER), 0x05, 'IER is back once DLAB is cleared');
  wr(LCR, 0x83);
  assert.equal(rd(THR), 0x01, 'divisor survived');
});

test('IER keeps only its low four bits (8250 autoconfig existence test)', () => {
  const { rd, wr } = setup();
  wr(IER, 0xff);
  assert.equal(rd(IER), 0x0f);
});

test('LSR: THRE and TEMT always set, DR follows the receive FIFO', () => {
  const { uart, rd } = setup();
  assert.equal(rd(LSR), 0x60);
  uart.enqueueInput(Buffer.from('ab'));
  assert.equal(rd(LSR), 0x61);
  assert.equal(rd(THR), 0x61);
  assert.equal(rd(THR), 0x62);
  assert.equal(rd(LSR), 0x60);
  assert.equal(rd(THR), 0x62, 'RBR keeps the last character');
  assert.equal(uart.missedReads, 1);
  assert.equal(uart.bytesIn, 2);
});

test('IIR: FIFO bits follow FCR, and 16550A identification', () => {
  const { rd, wr } = setup();
  assert.equal(rd(IIR), 0x01);
  wr(FCR, 0x01);
  assert.equal(rd(IIR), 0xc1, 'IIR >> 6 == 3 makes Linux run autoconfig_16550a');
  wr(FCR, 0x00);
  assert.equal(rd(IIR), 0x01);
});

test('IIR priority: line status > received data > THR empty > modem status', () => {
  const { uart, rd, wr } = setup();
  wr(MCR, 0x10 | 0x08); // loopback, to produce an overrun and modem deltas
  wr(FCR, 0x01);
  wr(IER, 0x0f);
  for (let i = 0; i < 65; i++) wr(THR, 0x41); // 64-byte FIFO plus one: overrun
  assert.equal(uart.overruns, 1);
  assert.equal(rd(IIR), 0xc6, 'line status first');
  assert.equal(rd(LSR) & 0x03, 0x03, 'DR and OE; reading LSR clears OE');
  assert.equal(rd(IIR), 0xc4, 'then received data (above trigger level 1)');
  for (let i = 0; i < 64; i++) rd(THR);
  assert.equal(rd(IIR), 0xc2, 'then THR empty');
  assert.equal(rd(IIR), 0xc0, 'reading IIR acknowledged THRE; modem status remains');
  assert.equal(rd(MSR) & 0x0f, 0x03, 'DCTS and DDSR: entering loopback dropped CTS and DSR');
  assert.equal(rd(IIR), 0xc1);
});

test('IIR reports a character timeout below the FIFO trigger level', () => {
  const { uart, rd, wr } = setup();
  wr(FCR, 0xc1); // trigger level 14
  wr(IER, 0x01);
  uart.enqueueInput(Buffer.alloc(3));
  assert.equal(rd(IIR), 0xcc);
  uart.enqueueInput(Buffer.alloc(11));
  assert.equal(rd(IIR), 0xc4);
});

test('FCR clears the receive FIFO', () => {
  const { uart, rd, wr } = setup();
  wr(FCR, 0x01);
  uart.enqueueInput(Buffer.from('xyz'));
  wr(FCR, 0x03);
  assert.equal(rd(LSR) & 0x01, 0);
});

test('loopback: THR echoes into RBR, nothing reaches the sink, MSR mirrors MCR', () => {
  const { rd, wr, out } = setup();
  wr(MCR, 0x10 | 0x0a); // what 8250 autoconfig writes: LOOP | OUT2 | RTS
  assert.equal(rd(MSR) & 0xf0, 0x90, 'DCD | CTS');
  wr(MCR, 0x10 | 0x05); // LOOP | OUT1 | DTR
  assert.equal(rd(MSR) & 0xf0, 0x60, 'RI | DSR');
  wr(THR, 0x5a);
  assert.equal(rd(LSR) & 0x01, 1);
  assert.equal(rd(THR), 0x5a);
  assert.equal(out.length, 0);
  wr(MCR, 0x0b);
  assert.equal(rd(MSR) & 0xf0, 0xb0, 'out of loopback the line reads as connected');
});

test('interrupts: edges on THR writes and on enabling ETBEI, gated by OUT2', () => {
  const { irq, rd, wr } = setup();
  wr(MCR, 0x00);
  wr(IER, 0x02);
  assert.equal(irq.count, 0, 'OUT2 clear: INTR not routed');
  assert.equal(rd(IIR), 0x02, 'but the condition shows in IIR');
  wr(IER, 0x00);
  wr(MCR, 0x08);
  wr(IER, 0x02);
  assert.equal(irq.count, 1, 'ETBEI set while THR empty');
  wr(IER, 0x02);
  assert.equal(irq.count, 1, 'rewriting the same IER is not a new condition');
  wr(THR, 0x41);
  wr(THR, 0x42);
  assert.equal(irq.count, 3, 'each THR write re-arms THRE');
  rd(IIR);
  wr(IER, 0x00);
  wr(THR, 0x43);
  assert.equal(irq.count, 3, 'no edge with ETBEI clear');
});

test('interrupts: received data raises one edge per empty -> non-empty transition', () => {
  const { uart, irq, rd, wr } = setup();
  uart.enqueueInput(Buffer.from('a'));
  assert.equal(irq.count, 0, 'ERBFI clear');
  wr(IER, 0x01);
  assert.equal(irq.count, 1, 'enabling ERBFI with data waiting');
  uart.enqueueInput(Buffer.from('b'));
  assert.equal(irq.count, 1, 'still pending, no new edge');
  rd(THR);
  rd(THR);
  uart.enqueueInput(Buffer.from('c'));
  assert.equal(irq.count, 2);
});

test('input FIFO is bounded and reports space once drained', () => {
  const { uart, rd } = setup({ fifoCapacity: 4 });
  let spaces = 0;
  uart.onInputSpace(() => spaces++);
  assert.equal(uart.enqueueInput(Buffer.from('abcdef')), 4);
  assert.equal(uart.enqueueInput(Buffer.from('z')), 0);
  assert.equal(uart.bytesIn, 4);
  for (let i = 0; i < 3; i++) rd(THR);
  assert.equal(spaces, 0);
  rd(THR);
  assert.equal(spaces, 1);
  rd(THR);
  assert.equal(spaces, 1, 'signalled once per refusal');
});

test('loopback refuses host input until it ends', () => {
  const { uart, wr } = setup();
  let spaces = 0;
  uart.onInputSpace(() => spaces++);
  wr(MCR, 0x10);
  assert.equal(uart.enqueueInput(Buffer.from('x')), 0);
  wr(MCR, 0x08);
  assert.equal(spaces, 1);
  assert.equal(uart.enqueueInput(Buffer.from('x')), 1);
});

test('scratch register holds a byte', () => {
  const { rd, wr } = setup();
  wr(SCR, 0xa5);
  assert.equal(rd(SCR), 0xa5);
});

test("Linux 8250 probe and startup steps find a 16550A without bug workarounds", () => {
  const { irq, rd, wr } = setup();
  // autoconfig(): IER existence test.
  wr(IER, 0);
  assert.equal(rd(IER) & 0x0f, 0);
  wr(IER, 0x0f);
  assert.equal(rd(IER) & 0x0f, 0x0f);
  wr(IER, 0);
  // Loopback test.
  const mcr = rd(MCR);
  wr(MCR, 0x1a);
  assert.equal(rd(MSR) & 0xf0, 0x90);
  wr(MCR, mcr);
  // FIFO identification; EFR probes at offset 2 must not read 0 with LCR 0x80 or 0xBF.
  wr(LCR, 0xbf); wr(FCR, 0); wr(LCR, 0);
  wr(FCR, 0x01);
  assert.equal(rd(IIR) >> 6, 3);
  wr(LCR, 0x80);
  assert.notEqual(rd(IIR), 0);
  wr(LCR, 0xbf);
  assert.notEqual(rd(IIR), 0);
  // SuperIO check: offset 2 with LCR 0xE0 must not mirror MCR's LOOP bit.
  wr(LCR, 0);
  const before = rd(MCR);
  wr(MCR, before ^ 0x10);
  wr(LCR, 0xe0);
  assert.equal((rd(IIR) ^ before) & 0x10, 0);
  wr(LCR, 0);
  wr(MCR, before);
  // 16750 check: FCR bit 5 must not show as IIR bit 5.
  wr(FCR, 0x21);
  assert.equal(rd(IIR) & 0xe0, 0xc0);
  wr(FCR, 0);
  // UUE bit of IER is not writable: stays a plain 16550A.
  wr(IER, 0x40);
  assert.equal(rd(IER) & 0x40, 0);
  wr(IER, 0);
  // startup(): LSR must not read 0xff; THRE must re-assert after IER is toggled (no UART_BUG_THRE).
  assert.notEqual(rd(LSR), 0xff);
  wr(LCR, 0x03);
  wr(IER, 0x02);
  assert.equal(rd(IIR) & 0x01, 0);
  wr(IER, 0);
  wr(IER, 0x02);
  assert.equal(rd(IIR) & 0x01, 0, 'THRE re-asserted');
  wr(IER, 0);
  // Enabling THRI shows a pending interrupt (no UART_BUG_TXEN), and with OUT2 it raises IRQ 4.
  wr(MCR, 0x0b);
  const edges = irq.count;
  wr(IER, 0x02);
  assert.equal(rd(LSR) & 0x40, 0x40);
  assert.equal(rd(IIR) & 0x01, 0);
  assert.equal(irq.count, edges + 1);
});

test('the polled-transmit hook: polled once the guest has read LSR and while IER.THRE is clear; DLM writes do not count', () => {
  const { uart, wr, rd } = setup();
  const heard: boolean[] = [];
  uart.onPolledTransmit((polled) => heard.push(polled));
  assert.deepEqual(heard, [false], 'a guest that never read LSR is not known to poll');
  wr(THR, 0x41);
  rd(LSR);
  assert.deepEqual(heard, [false, true]);
  wr(IER, 0x01); // receive interrupts only: still polled
  wr(IER, 0x03); // THRE on
  wr(IER, 0x03);
  wr(LCR, 0x80); // DLAB: offset 1 is DLM now
  wr(IER, 0x00);
  wr(LCR, 0x03);
  wr(IER, 0x01); // THRE off
  rd(LSR);
  assert.deepEqual(heard, [false, true, false, true]);
});
