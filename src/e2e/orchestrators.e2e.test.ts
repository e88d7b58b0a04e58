/**
 * End to end: the guest side of the orchestrator replays (orchestrators-driver.ts does the steps;
 * the host-only parts are in src/compat/*). One emulated-host run: Kata's config file with
 * acpi=off, its agent path over the hybrid vsock and a drive hot-plugged by PATCH; go-sdk's
 * handler order with InstanceStart (drive, interface, vsock) and its snapshot path; the
 * snapshot-resume control plane (Uffd, resume_vm false, limiters, Resumed, PUT /mmds) timed;
 * both restores on new TAPs and vsock sockets (the guest's network and agent checked); flintlock's command line with
 * cloud-init data in MMDS read by the guest.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ensureInitrd, ensureKernel } from '../guest';
import { detectKvmHost } from '../host/kvm-host';
import { e2eUnavailableReason, runReportDriver, where } from './harness';

const skip = e2eUnavailableReason() ?? (process.getuid?.() === 0 || detectKvmHost().kind !== 'hardware' ? undefined : 'the flintlock scenario makes a TAP: root is needed on a hardware-KVM host');
const DRIVER = path.join(__dirname, 'orchestrators-driver.js');

describe(`orchestrators end to end with Linux guests (in ${where()})`, { skip }, () => {
  let report: Record<string, Record<string, any>>;
  const context = (name: string) => JSON.stringify(report[name], null, 1);

  before(async () => {
    const kernel = await ensureKernel();
    const initrd = await ensureInitrd();
    report = await runReportDriver(DRIVER, [kernel, initrd], { name: 'orch', timeoutMs: 15 * 60_000, attemptTimeoutMs: 5 * 60_000, hardwareTimeoutMs: 10 * 60_000 });
    const g = report.gosdk;
    console.log(`orchestrators e2e: kata running ${Number(report.kata.runningMs).toFixed(0)} ms, agent ${Number(report.kata.agentMs).toFixed(0)} ms; ` +
      `resume budget: spawn->API ${Number(g.spawnToApiMs).toFixed(0)} ms, ${JSON.stringify(g.resume)}, resume->first tick ${Number(g.resumeToFirstTickMs).toFixed(0)} ms; ` +
      `scenarios ${Object.entries(report).map(([k, v]) => `${k} ${(Number(v.scenarioMs) / 1000).toFixed(1)} s`).join(', ')}`);
  });

  test('Kata: config file with acpi=off boots; GET / says Running; the agent answers over the hybrid vsock', () => {
    const r = report.kata;
    assert.equal(r.error, undefined, context('kata'));
    assert.match(r.bootArgs, /\bacpi=off\b/);
    assert.ok(r.agentVersion, context('kata'));
    assert.match(r.guestBefore, /acpi=off/, context('kata'));
    assert.match(r.guestBefore, /\n0\n0\n?$/, `no ACPI tables in the guest and drive_0 empty: ${context('kata')}`);
  });

  test('Kata: PATCH /drives/drive_0 hot-plugs the container disk (the guest reads it) and PATCH back unplugs it', () => {
    const r = report.kata;
    assert.deepEqual(r.failures, [], context('kata'));
    assert.match(r.hotplugged, /^2048\nKATA-HOTPLUG-OK/, context('kata'));
    assert.equal(r.unplugged, '0', context('kata'));
    assert.ok(Number(r.metricsBlockReads) > 0, `the aggregate block metrics count the guest's reads: ${context('kata')}`);
  });

  test('go-sdk: default handler order with InstanceStart (drive, interface, vsock); its snapshot path (File, network_overrides, vsock_override) resumes the guest where it stopped, on the new TAP and socket', () => {
    const r = report.gosdk;
    assert.equal(r.error, undefined, context('gosdk'));
    assert.deepEqual([r.failuresA, r.failuresB], [[], []], context('gosdk'));
    assert.equal(r.netA, true, `the guest reached the host before the snapshot: ${context('gosdk')}`);
    assert.ok(r.firstTickB >= r.tickAtSnapshot && r.firstTickB <= r.tickAtSnapshot + 2, context('gosdk'));
    assert.equal(r.netB, true, `the loaded guest reached the host over the override TAP: ${context('gosdk')}`);
    assert.ok(r.agentB, `the loaded guest's agent answered on the vsock_override socket: ${context('gosdk')}`);
  });

  test('snapshot-resume control plane: Uffd, resume_vm false, limiters, Resumed, PUT /mmds; the guest runs on; within budget', () => {
    const r = report.gosdk;
    assert.ok(r.firstTickC >= r.tickAtSnapshot && r.firstTickC <= r.tickAtSnapshot + 2, context('gosdk'));
    assert.deepEqual(r.mmdsC, { latest: { 'instance-id': 'i-c' } });
    assert.equal(r.netC, true, `the resumed guest reached the host over its own TAP: ${context('gosdk')}`);
    assert.ok(r.agentC, `the resumed guest's agent answered on its own vsock socket: ${context('gosdk')}`);
    // Only a hang fails here: under TCG on a loaded machine the sequence took 1.2-4.6 s; the
    // budget itself is measured with a tiny guest on local KVM (src/compat/snapshot-resume).
    assert.ok(r.resume.totalMs < 30_000, context('gosdk'));
  });

  test('flintlock: --id --boot-timer --no-api --config-file --metadata; the guest reads meta-data and user-data from MMDS; boot time logged', () => {
    const r = report.flintlock;
    assert.equal(r.error, undefined, context('flintlock'));
    assert.equal(r.skipped, undefined, context('flintlock'));
    assert.equal(r.code, 0, context('flintlock'));
    assert.match(r.out, /MD=instance-id-flintlock-1\b/, context('flintlock'));
    assert.match(r.out, /UD=cloud-config-runcmd-42\b/, context('flintlock'));
    assert.match(r.log, /Guest-boot-time\s*=\s*\d+ us/, context('flintlock'));
  });
});
