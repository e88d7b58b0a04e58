/** Unit tests of the console-stall debug watch (SPARKLER_DEBUG_CONSOLE_STALL_MS). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FAST_PIO_BYTES, FastPioTable } from './fast-pio';
import { StallWatched, watchConsoleStall } from './console-stall-debug';

function fakeVmm(stuckBytes: number) {
  const table = new FastPioTable(new ArrayBuffer(FAST_PIO_BYTES));
  table.setRule(0, { port: 0x3fd, action: 'read-constant', value: 0x60 });
  const serial = { bytesOut: 10, debugState: () => ({ ier: 0 }), flush: () => {} };
  let drains = 0;
  const vmm = {
    state: 'Running',
    parts: { devices: { serial }, queuedWrites: { queuing: () => true, fastPath: { table, coalescedEnds: () => [3, 5], debugTimers: () => ({ drainTimer: false, closed: false }) } } },
    exitCounters: { io: 1, mmio: 0, other: 0 },
    handoverCounters: {},
    debugRunner: () => ({ goal: 'run' }),
    debugRips: async () => '0xffffffff81000000',
    drainQueuedWrites: () => { drains++; serial.bytesOut += stuckBytes; stuckBytes = 0; },
  } as unknown as StallWatched;
  return { vmm, drains: () => drains };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('without SPARKLER_DEBUG_CONSOLE_STALL_MS nothing is watched', async () => {
  const { vmm, drains } = fakeVmm(0);
  const lines: string[] = [];
  const stop = watchConsoleStall(vmm, {}, (l) => lines.push(l));
  await sleep(50);
  stop();
  assert.deepEqual(lines, []);
  assert.equal(drains(), 0);
});

test('a console quiet for the given time is reported once, with the rings, the UART and what a drain brought', async () => {
  const { vmm, drains } = fakeVmm(7);
  const lines: string[] = [];
  const stop = watchConsoleStall(vmm, { SPARKLER_DEBUG_CONSOLE_STALL_MS: '40' }, (l) => lines.push(l));
  await sleep(200);
  stop();
  const report = lines.find((l) => l.includes('[console-stall] {'));
  assert.ok(report, lines.join(''));
  assert.match(report, /"coalesced":\[3,5\]/);
  assert.match(report, /"rules":\["600203fd"/);
  assert.match(report, /"serial":\{"ier":0\}/);
  assert.match(report, /drained=7/, 'the bytes a drain brought are counted');
  // The drain's bytes end that quiet spell; a second one is reported once more, with nothing stuck.
  const reports = lines.filter((l) => l.includes('[console-stall] {'));
  assert.equal(reports.length, drains());
  assert.ok(reports.slice(1).every((l) => /drained=0/.test(l)), reports.join(''));
});
