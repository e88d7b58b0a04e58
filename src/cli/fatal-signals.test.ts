/**
 * Firecracker's signal behaviour, on bin/sparkler: each fatal signal logs its line, writes one
 * metrics line counting it and exits with Firecracker's code; SIGPIPE is counted and survived.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '../testing/temp-dir';
import { waitFor } from '../testing/wait';
import { FATAL_SIGNALS, FatalSignal } from './fatal-signals';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'sparkler');
const dir = tempDir('sparkler-signals-');

async function vmmReceiving(name: string, signal: NodeJS.Signals, thenStop: boolean): Promise<{ code: number | null; out: string; metrics: Record<string, Record<string, number>>[] }> {
  const metricsPath = path.join(dir, `${name}.ndjson`);
  const child = spawn(BIN, ['--api-sock', path.join(dir, `${name}.sock`), '--metrics-path', metricsPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c) => { out += c; });
  child.stderr!.on('data', (c) => { out += c; });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await waitFor(() => /API server started\./.test(out), 'API server started');
  child.kill(signal);
  if (thenStop) {
    await waitFor(() => /Received signal 13/.test(out), 'the SIGPIPE line');
    assert.equal(child.exitCode, null, 'still running after SIGPIPE');
    child.kill('SIGTERM');
  }
  const code = await exit;
  const metrics = fs.readFileSync(metricsPath, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  return { code, out, metrics };
}

for (const [name, s] of Object.entries(FATAL_SIGNALS)) {
  test(`${name}: "Shutting down VM after intercepting signal ${s.number}", signals.${s.counter} == 1, exit ${s.exit}`, async () => {
    const r = await vmmReceiving(name, name as FatalSignal, false);
    assert.equal(r.code, s.exit, r.out);
    assert.match(r.out, new RegExp(`Shutting down VM after intercepting signal ${s.number}`));
    assert.equal(r.metrics.length, 1);
    assert.equal(r.metrics[0].signals[s.counter], 1);
    assert.equal(r.metrics[0].seccomp.num_faults, 0);
  });
}

test('SIGPIPE: "Received signal 13", the VMM keeps running, signals.sigpipe counts it', async () => {
  const r = await vmmReceiving('pipe', 'SIGPIPE', true);
  assert.equal(r.code, 0, r.out);
  assert.equal(r.metrics.reduce((n, m) => n + m.signals.sigpipe, 0), 1);
});
