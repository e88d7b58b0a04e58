import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { archiveAttempt, hangDumpLine, stalledIn } from './harness';
import { tempDir } from '../testing/temp-dir';

test('archiveAttempt moves a dropped attempt\'s boot files aside and says which boots stalled or faulted, with their last lines', () => {
  const dir = tempDir('sparkler-harness-test-');
  const put = (name: string, text: string) => fs.writeFileSync(path.join(dir, name), text);
  put('run.sh', 'the script stays');
  put('done.out', 'booted\nSPARKLER-CMD-EXIT=0\n');
  put('done.code', '0\n');
  put('stuck.out', 'Running Sparkler\nAPI server started.\n');
  put('stuck.err', '');
  put('stuck.hang', 'thread node state S wchan ep_poll syscall 232 0x5 0x7ffe\n');
  put('fault.out', 'Linux version 6.1\nVmm is stopping (guest triple-fault).\n');
  put('fault.code', '0\n');
  const said = archiveAttempt(dir);
  assert.match(said, /boot "stuck" had not finished; its last lines:\n {2}\| Running Sparkler\n {2}\| API server started\.\n {2}\| thread node state S wchan ep_poll/);
  assert.match(said, /boot "fault" triple-faulted; its last lines:\n {2}\| Linux version 6\.1\n {2}\| Vmm is stopping \(guest triple-fault\)\./);
  assert.doesNotMatch(said, /"done"/);
  assert.match(said, new RegExp(`the attempt's files are in ${path.join(dir, 'attempt-1')}$`));
  assert.deepEqual(fs.readdirSync(dir).sort(), ['attempt-1', 'run.sh']);
  assert.equal(fs.readFileSync(path.join(dir, 'attempt-1', 'stuck.hang'), 'utf8').startsWith('thread node'), true);
  put('done.out', 'again\n');
  assert.match(archiveAttempt(dir), /attempt-2$/);
});

test('archiveAttempt shows where a driver\'s report says a guest triple-faulted', () => {
  const dir = tempDir('sparkler-harness-test-');
  fs.writeFileSync(path.join(dir, 'report.json'), JSON.stringify({ console: 'line one\nline two\nVmm is stopping (guest triple-fault).\n' }));
  const said = archiveAttempt(dir, (n) => n === 'report.json');
  assert.match(said, /report\.json shows a triple fault; around it:\n {2}\| \{"console":"line one\n {2}\| line two\n {2}\| Vmm is stopping \(guest triple-fault\)\./);
  assert.equal(fs.existsSync(path.join(dir, 'attempt-1', 'report.json')), true);
});

test('hangDumpLine dumps the threads of a process still running after the delay, and nothing once it has ended', async () => {
  const { execFileSync } = await import('node:child_process');
  const dir = tempDir('sparkler-harness-test-');
  const dump = path.join(dir, 'x.hang');
  const script = `sleep 5 & pid=$!\n${hangDumpLine('pid', dump, 1)}\nsleep 2; kill $pid; wait $pid\n`
    + `sleep 30 & pid=$!\n${hangDumpLine('pid', `${dump}2`, 1)}\nkill $pid; wait $pid; kill $hang; sleep 2\n`;
  execFileSync('sh', ['-c', script], { timeout: 20_000 });
  assert.match(fs.readFileSync(dump, 'utf8'), /^thread sleep state [SR] wchan \S+ syscall/);
  assert.equal(fs.existsSync(`${dump}2`), false);
});

test('progressReport says each step as the driver fills it in', async () => {
  const { progressReport } = await import('./progress');
  const lines: string[] = [];
  const report = progressReport<number>((l) => lines.push(l));
  report.boot = 1;
  report.echo = 2;
  assert.deepEqual(Object.keys(report), ['boot', 'echo']);
  assert.equal(JSON.stringify(report), '{"boot":1,"echo":2}');
  assert.match(lines.join(''), /^e2e step done: boot \(\+\d+\.\d s\)\ne2e step done: echo \(\+\d+\.\d s\)\n$/);
});

test('stalledIn names the scenario a driver gave up on, with its processes\' last lines', () => {
  const dir = tempDir('sparkler-harness-test-');
  const file = path.join(dir, 'report.json');
  assert.equal(stalledIn(file), undefined, 'no report yet');
  fs.writeFileSync(file, JSON.stringify({ kata: { runningMs: 10 }, flintlock: { stalled: true, outputs: ['Linux version 6.1\nRun /init\n', ''] } }));
  assert.equal(stalledIn(file), 'a guest in the flintlock scenario stopped making progress (last output: Run /init)');
  fs.writeFileSync(file, JSON.stringify({ kata: { runningMs: 10 } }));
  assert.equal(stalledIn(file), undefined);
});
