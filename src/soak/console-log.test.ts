import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConsoleLog, explainExit } from './console-log';

test('a guest panic and the VMM stop line are both named', () => {
  const tail = '[  12.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000000\n[  12.2] Rebooting in 1 seconds..\n2026-12-06T07:00:00 [anonymous-instance:main] Vmm is stopping (guest reset).\n';
  const e = explainExit(tail);
  assert.equal(e.cause, 'guest init exited (kernel panic: attempted to kill init)');
  assert.match(e.evidence ?? '', /Attempted to kill init! exitcode=0x00000000/);
  assert.match(e.stopReason ?? '', /Vmm is stopping \(guest reset\)\.$/);
});

test('a soft lockup is reported before the panic it caused', () => {
  const e = explainExit('watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [sh:80]\nKernel panic - not syncing: softlockup: hung tasks\n');
  assert.equal(e.cause, 'guest soft lockup (watchdog), then a panic');
  assert.match(e.evidence ?? '', /^watchdog: BUG: soft lockup/);
  assert.equal(e.hostSlowness, true);
  assert.equal(explainExit('Kernel panic - not syncing: VFS: Unable to mount root fs\n').hostSlowness, undefined);
});

test('a triple fault or a tail with no reason says so', () => {
  const e = explainExit('WARN vCPU 0 shut down (triple fault): rip=0xfff0.\nINFO Vmm is stopping (guest triple-fault).\n');
  assert.equal(e.cause, 'guest triple fault with no kernel message before it');
  assert.match(e.stopReason ?? '', /triple fault/);
  assert.deepEqual(explainExit('booting...\n'), { stopReason: undefined, cause: 'unknown' });
});

test('the log keeps everything on disk and the tail in memory', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'console-log-'));
  const log = new ConsoleLog(path.join(dir, 'console.log'));
  for (let i = 0; i < 2000; i++) log.write(Buffer.from(`line ${i}\n`));
  log.mark('restored process');
  log.close();
  const all = fs.readFileSync(path.join(dir, 'console.log'), 'utf8');
  assert.match(all, /^line 0\n/);
  assert.ok(log.tail(100).endsWith('--- restored process ---\n'));
  assert.equal(log.tail(100).length, 100);
  fs.rmSync(dir, { recursive: true });
});

test('the XSAVE size mismatch seen at boot in the emulated host is named ahead of the triple fault', () => {
  const tail = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'soak-6x3-vm2-console.log'), 'utf8').slice(-8192);
  const e = explainExit(tail);
  assert.match(e.cause, /inconsistent XSAVE sizes/);
  assert.match(e.evidence ?? '', /size 832 != kernel_size 576/);
  assert.match(e.stopReason ?? '', /triple fault/);
});
