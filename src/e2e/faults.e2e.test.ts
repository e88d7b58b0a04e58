/**
 * End to end: block and process faults with a Linux guest (faults-driver.ts does the steps; here
 * they run where Linux guests can boot, in one emulated-host run with two guest boots). What each
 * outcome means is in docs/reliability.md.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureInitrd, ensureKernel } from '../guest';
import { detectKvmHost } from '../host/kvm-host';
import { e2eUnavailableReason, tripleFaultIn, where } from './harness';
import { tempDir } from '../testing/temp-dir';

const skip = e2eUnavailableReason();
const DRIVER = path.join(__dirname, 'faults-driver.js');
type Step = { code: number; out: string };

describe(`block and process faults with a Linux guest (in ${where()})`, { skip }, () => {
  let r: Record<string, unknown>;
  const step = (k: string) => r[k] as Step;
  const context = () => JSON.stringify(r, null, 1);

  before(async () => {
    const kernel = await ensureKernel();
    const initrd = await ensureInitrd();
    const file = path.join(tempDir('sparkler-e2e-faults-'), 'report.json');
    const argv = [process.execPath, DRIVER, file, kernel, initrd];
    if (detectKvmHost().kind === 'hardware') {
      spawnSync(argv[0], argv.slice(1), { stdio: 'inherit', timeout: 8 * 60_000 });
    } else {
      const { runInEmuHost } = await import('../emuhost');
      const res = await runInEmuHost(argv, { stdio: 'pipe', timeoutMs: 10 * 60_000, retriesIfWedged: 1, attemptTimeoutMs: 5 * 60_000, faultedIf: () => tripleFaultIn(path.dirname(file), (n) => n === 'report.json') });
      if (res.code !== 0) throw new Error(`The emulated KVM host run failed with code ${res.code}: ${res.stderr ?? ''}${res.stdout ?? ''}`);
    }
    r = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.equal(r.error, undefined, context());
  });

  test('backing file deleted under the guest: writes and reads go on (the open file lives on, as in Firecracker)', () => {
    assert.match(step('deletedAfter').out, /^16\+0 records out\n2097152$/, context());
  });

  test('backing file made read-only under the guest: the open descriptor keeps writing', () => {
    assert.match(step('readOnlyAfter').out, /^16\+0 records out$/, context());
  });

  test('backing file truncated: reads past the end fail in the guest, the VMM stays up, PATCH /drives recovers', () => {
    assert.match(step('truncatedRead').out, /rc=[1-9]/, context());
    assert.equal(r.aliveAfterTruncate, true, context());
    assert.match(step('truncatedRecovered').out, /5a 5a 5a 5a/, context());
  });

  test('disk full (ENOSPC): the guest write fails, the VMM and the other drives go on', () => {
    assert.match(step('fullWrite').out, /rc=[1-9]/, context());
    assert.equal(r.aliveAfterFull, true, context());
    assert.match(step('otherDriveAfterFull').out, /^16\+0 records out\nrc=0$/, context());
    assert.equal(r.apiAfterFaults, 'Running', context());
  });

  test('SIGKILL mid-write: every record acknowledged after fsync (Writeback) is on the host file, and reads back after a restart', () => {
    const s = r.sigkill as { ackedAtKill: number; missingOnHost: number[] };
    assert.ok(s.ackedAtKill >= 30, context());
    assert.deepEqual(s.missingOnHost, [], context());
    assert.ok(Number(step('restartReadBack').out) >= s.ackedAtKill + 1, context());
  });
});
