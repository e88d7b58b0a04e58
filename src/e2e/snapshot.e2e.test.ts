/**
 * End to end: a Linux guest printing a counter is snapshotted (Full) by one VMM process, which is
 * killed; a fresh process loads the snapshot and the guest counts on without booting again
 * (snapshot-driver.ts does the steps; here they run where Linux guests can boot).
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ensureInitrd, ensureKernel, ensureRootfs } from '../guest';
import { e2eUnavailableReason, runReportDriver, where } from './harness';

const skip = e2eUnavailableReason();
const DRIVER = path.join(__dirname, 'snapshot-driver.js');

describe(`snapshots end to end with a Linux guest (in ${where()})`, { skip }, () => {
  let reports: Record<string, Record<string, unknown>>;

  before(async () => {
    const kernel = await ensureKernel();
    const initrd = await ensureInitrd();
    const rootfs = await ensureRootfs();
    reports = await runReportDriver(DRIVER, [kernel, initrd, rootfs], { name: 'snap', timeoutMs: 10 * 60_000, attemptTimeoutMs: 5 * 60_000, hardwareTimeoutMs: 10 * 60_000 });
    for (const [name, report] of Object.entries(reports)) console.log(`snapshot e2e (${name}): create ${Number(report.createMs).toFixed(0)} ms; load logged ${report.loadLogged} ms, answered ${Number(report.loadAnsweredMs).toFixed(1)} ms, process spawn -> loaded ${Number(report.spawnToLoadedMs).toFixed(0)} ms`);
  });

  const countsOn = (report: Record<string, unknown>) => {
    const context = JSON.stringify(report, null, 1);
    assert.equal(report.error, undefined, context);
    assert.deepEqual([report.bootSource, report.machineConfig, report.instanceStart, report.pause, report.create, report.load], [204, 204, 204, 204, 204, 204], context);
    assert.equal(report.stateAfter, 'Running', context);
    assert.equal(report.bootedAgain, false, context);
    const first = Number(report.firstTickAfter);
    const saved = Number(report.tickAtSnapshot);
    assert.ok(first >= saved && first <= saved + 2, `the first tick after restore (${first}) follows the last before (${saved})\n${context}`);
  };

  test('a paused Linux guest is saved by one process and counts on in a fresh one, without rebooting', () => countsOn(reports.initrd));

  test('vsock: the guest agent answers a new connection on the vsock_override socket after the restore; VMGenID makes the kernel reseed once', () => {
    const report = reports.initrd;
    const context = JSON.stringify(report, null, 1);
    assert.equal(report.vsock, 204, context);
    assert.equal(report.echoBefore, 'before the snapshot', context);
    assert.equal(report.echoAfter, 'after the restore', context);
    assert.match(String(report.tickLineBefore), /FORK=0 GENDEV=1 GED=0 CRNG=1/, `the vmgenid driver is bound, the crng ready, no GED interrupt or reseed before the restore\n${context}`);
    assert.match(String(report.lastTickLine), /FORK=1 GENDEV=1 GED=1 /, `one GED interrupt and one "virtual machine fork" reseed after the restore\n${context}`);
  });

  test('the same, restored through the Uffd backend with sparkler uffd-handler serving the pages', () => countsOn(reports.uffd));

  test('a guest on a root drive with an entropy device: both devices answer after the restore, the file written before it reads back', () => {
    const report = reports.rootfs;
    countsOn(report);
    assert.deepEqual([report.drive, report.entropy], [204, 204]);
    assert.match(String(report.lastTickLine), /DISK=512 RNG=8 FILE=persisted-42/, JSON.stringify(report, null, 1));
  });
});
