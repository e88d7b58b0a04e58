import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Serial } from '../devices/legacy/serial';
import { SERIAL_FLUSH_DELAY_MS, serialFlushTimer } from './legacy-devices';

const THR = 0;
const noIrq = { trigger() {} };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function uart(delayMs?: number) {
  const out: Buffer[] = [];
  const serial = new Serial(noIrq, (b) => out.push(b), { scheduleFlush: serialFlushTimer(delayMs) });
  const write = (text: string) => { for (const c of Buffer.from(text)) serial.write(THR, Buffer.of(c)); };
  return { serial, out, write };
}

test('a console burst becomes one sink call, flushed within a few ms with no further writes', async () => {
  const { out, write } = uart();
  const started = performance.now();
  write('a burst of console output, one exit per byte\n');
  assert.equal(out.length, 0, 'nothing written per byte');
  while (out.length === 0 && performance.now() - started < 1000) await sleep(0);
  const waited = performance.now() - started;
  assert.deepEqual(out, [Buffer.from('a burst of console output, one exit per byte\n')]);
  assert.ok(waited < SERIAL_FLUSH_DELAY_MS + 50, `flushed after ${waited.toFixed(2)} ms`);
});

test('bytes written while a flush is pending join that batch', async () => {
  const { out, write } = uart(5);
  write('one ');
  await sleep(1);
  write('two');
  await sleep(20);
  assert.deepEqual(out.map(String), ['one two']);
});

test('the flush timer never keeps the process alive', () => {
  const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const { serial, write } = uart(60_000);
  write('pending');
  assert.equal(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length, before, 'the timer is unref\'d');
  serial.flush();
});

test('flush() (as on VM stop) writes pending bytes at once and clears the timer', async () => {
  const { serial, out, write } = uart(60_000);
  write('last words');
  serial.flush();
  assert.deepEqual(out.map(String), ['last words']);
  await sleep(5);
  assert.equal(out.length, 1);
});
