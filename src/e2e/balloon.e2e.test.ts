/**
 * The balloon end to end with a Linux guest (balloon-driver.ts does the work): inflating to
 * 180 MiB after the guest filled and freed 160 MiB lowers the VMM's RSS by at least 120 MiB,
 * statistics arrive and follow the balloon, a deflate gives the memory back (the guest fills
 * 160 MiB again), and free page reporting lowers RSS with no balloon target at all.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ensureInitrd, ensureKernel } from '../guest';
import { e2eUnavailableReason, runReportDriver, where } from './harness';

const skip = e2eUnavailableReason();
const DRIVER = path.join(__dirname, 'balloon-driver.js');

type Stats = { free_memory?: number; available_memory?: number; actual_mib?: number; target_mib?: number; total_memory?: number };

describe(`the balloon end to end with a Linux guest (in ${where()})`, { skip }, () => {
  let r: Record<string, unknown>;

  before(async () => {
    const kernel = await ensureKernel();
    const initrd = await ensureInitrd();
    r = await runReportDriver(DRIVER, [kernel, initrd], { name: 'balloon', timeoutMs: 13 * 60_000, attemptTimeoutMs: 6 * 60_000, hardwareTimeoutMs: 20 * 60_000 });
    const { balloonOutput, balloonLog, reportingOutput, oomOutput, hintingOutput, ...numbers } = r;
    process.stdout.write(`# balloon e2e: ${JSON.stringify(numbers)}\n`);
  });

  test('inflating to 180 MiB after the guest freed 160 MiB lowers the VMM RSS by at least 120 MiB', () => {
    const context = `${JSON.stringify({ ...r, reportingOutput: undefined, oomOutput: undefined })}`;
    assert.equal(r.balloonError, undefined, context);
    assert.equal(r.inflate, 204, context);
    const drop = (r.rssAfterFree as number) - (r.rssInflated as number);
    assert.ok(drop >= 120, `RSS fell by ${drop} MiB: ${context}`);
    assert.equal((r.statsInflated as Stats).actual_mib, 180, context);
  });

  test('statistics arrive and free memory follows the balloon', () => {
    const before = r.statsBefore as Stats;
    const inflated = r.statsInflated as Stats;
    assert.ok((before.total_memory ?? 0) > 200 * 1024 * 1024, JSON.stringify(before));
    assert.ok((before.free_memory ?? 0) - (inflated.free_memory ?? 0) > 150 * 1024 * 1024, JSON.stringify({ before, inflated }));
  });

  test('deflating gives the memory back: the guest fills 160 MiB again', () => {
    assert.equal(r.deflate, 204);
    assert.match(String(r.balloonOutput), /SPK-REFILLED/);
    assert.equal((r.statsDeflated as Stats).actual_mib, 0);
  });

  test('free page reporting lowers the RSS after the guest frees memory, with no balloon target', () => {
    const context = JSON.stringify({ ...r, balloonOutput: undefined, oomOutput: undefined });
    assert.equal(r.reportingError, undefined, context);
    const samples = r.reportingRssSamples as number[];
    const drop = (r.reportingRssFilled as number) - samples[samples.length - 1];
    assert.ok(drop >= 100, `RSS fell by ${drop} MiB: ${context}`);
  });

  test('with deflate_on_oom a guest under memory pressure takes pages back instead of an OOM kill', () => {
    const context = JSON.stringify({ ...r, balloonOutput: undefined, reportingOutput: undefined });
    assert.equal(r.oomError, undefined, context);
    assert.equal(r.oomActualBefore, 180, context);
    assert.equal(r.oomFilled, true, context);
    assert.equal(r.oomKilled, false, context);
    assert.ok((r.oomActualAfter as number) < 180, context);
  });

  test('free page hinting: a run the guest completes lowers the RSS after it freed memory', () => {
    const context = JSON.stringify({ ...r, balloonOutput: undefined, reportingOutput: undefined, oomOutput: undefined });
    assert.equal(r.hintingError, undefined, context);
    assert.equal(r.hintingStart, 204, context);
    assert.deepEqual(r.hintingStatus, { host_cmd: 1, guest_cmd: 0 }, context);
    assert.ok((r.hintingRssFreed as number) - (r.hintingRssAfter as number) >= 100, context);
  });
});
