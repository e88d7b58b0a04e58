/**
 * End to end: vsock and the SDK with the project's microVM kernel and initramfs (the guest
 * agent inside). MicroVM.start, exec, writeFile/readFile of 4 MiB, 32 host-initiated connections
 * each echoing 1 MiB through a guest echo server, 16 guest-initiated connections to a host
 * listener, 100 host connections closed mid-stream, 50 MiB of streamed stdout, stop(); and
 * MicroVM.start({ pool }) on a warm pool of one.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ensureInitrd, ensureKernel } from '../guest';
import { e2eUnavailableReason, runReportDriver, where } from './harness';

const skip = e2eUnavailableReason();
const DRIVER = path.join(__dirname, 'vsock-driver.js');

describe(`vsock and the SDK end to end with a Linux guest (in ${where()})`, { skip }, () => {
  let report: Record<string, any>;
  let context = '';

  before(async () => {
    const kernel = await ensureKernel();
    const initrd = await ensureInitrd();
    report = await runReportDriver(DRIVER, [kernel, initrd], { name: 'vsock', timeoutMs: 15 * 60_000, attemptTimeoutMs: 4 * 60_000, hardwareTimeoutMs: 10 * 60_000 });
    context = JSON.stringify({ ...report, console: undefined }, null, 1) + `\n${report.console}`;
    console.log(`vsock e2e figures: ${JSON.stringify({ startToAgentMs: report.startToAgentMs, pooledClaimToAgentMs: report.pooled?.claimToAgentMs, hostEcho: report.hostEcho, bigStdout: report.bigStdout })}`);
  });

  test('MicroVM.start, exec with exit code and both streams', () => {
    assert.equal(report.error, undefined, context);
    assert.equal(report.exec.exitCode, 3, context);
    assert.match(report.exec.stdout, /^6\.1\.\d+/, context);
    assert.equal(report.exec.stderr, 'to-stderr\n', context);
  });

  test('writeFile/readFile of 4 MiB round-trips; the guest sees the same bytes', () => {
    assert.deepEqual([report.files.same, report.files.size, report.files.guestSha], [true, 4 << 20, report.files.hostSha], context);
  });

  test('32 host-initiated connections each echo 1 MiB with matching checksums', () => {
    assert.equal(report.hostEcho.ok, 32, context);
  });

  test('16 guest-initiated connections reach <uds_path>_6000 and echo', () => {
    assert.match(report.guestInitiated.stdout, /GUEST-OK=16/, context);
  });

  test('a guest that never reads: the host socket backs up at the guest\'s credit, the VMM holds little, other connections go on', (t) => {
    const n = report.neverReads;
    t.diagnostic(`never-read connection: ${n?.acceptedAfter3s} B taken after 3 s, ${n?.acceptedAfter5s} after 5 s of ${n?.queued}; VMM RSS +${n?.vmmRssGrowthKiB} KiB`);
    assert.ok(n, context);
    assert.equal(n.otherEcho, 'beside a stuck one', context);
    assert.equal(n.state, 'Running', context);
    // The guest's receive buffer (256 KiB by default) plus socket buffers on both host ends: far below 64 MiB.
    assert.ok(n.acceptedAfter5s < 16 << 20, context);
    assert.ok(n.acceptedAfter5s - n.acceptedAfter3s < 1 << 20, `still flowing into a guest that never reads\n${context}`);
    assert.ok(n.vmmRssGrowthKiB < 8 * 1024, context);
  });

  test('1023 host connections are held at once, the next is closed, and after they close a new one works', (t) => {
    const m = report.manyConnections;
    t.diagnostic(`1023 connections opened in ${m?.openedSeconds?.toFixed(1)} s; the 1024th: ${m?.extra}`);
    assert.ok(m, context);
    assert.deepEqual([m.held, m.refused], [1023, ''], context);
    assert.notEqual(m.extra, 'accepted', context);
    assert.equal(m.stateWhileFull, 'Running', context);
    assert.equal(m.afterClose, 'after 1023', context);
  });

  test('100 host connections closed mid-stream leave the VMM healthy', () => {
    assert.equal(report.afterEpipe, 'still alive', context);
  });

  test('50 MiB of stdout streams without either process growing by more than a few MiB', () => {
    assert.deepEqual([report.bigStdout.exitCode, report.bigStdout.bytes], [0, 50 << 20], context);
    assert.ok(report.bigStdout.vmmRssGrowthKiB < 8 * 1024, context);
    assert.ok(report.bigStdout.clientRssGrowthKiB < 16 * 1024, context);
  });

  test('pause/resume, then stop() leaves no process or socket behind', () => {
    assert.equal(report.afterResume, 'resumed\n', context);
    assert.deepEqual(report.stopped, { ended: true, leftover: [], processAlive: false }, context);
  });

  test('a VM from a warm pool: claimed, booted, exec, its console through PUT /serial, stopped', () => {
    const p = report.pooled;
    assert.ok(p, context);
    assert.match(String(p.poolId), /^vmm-/, context);
    assert.equal(p.echo, 'pooled\n', context);
    assert.equal(p.consoleHasBoot, true, context);
    assert.deepEqual([p.ended, p.processAlive, p.claimedLeft], [true, false, []], context);
  });
});
