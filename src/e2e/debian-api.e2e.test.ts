/**
 * End to end through the API with Debian's cloud kernel: Firecracker's getting-started sequence
 * (PUT /boot-source, PUT /machine-config, InstanceStart) boots it with its initramfs and no root
 * drive, so the initramfs loads the virtio modules and runs the busybox init contract from RAM;
 * SendCtrlAltDel then reboots it (Debian's kernel drives the emulated i8042 itself) and the VMM
 * exits with 0. The same driver as api.e2e.test.ts.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureDebianInitrd, ensureDebianKernel } from '../guest';
import { detectKvmHost } from '../host/kvm-host';
import { READY_MARKER } from './api-driver';
import { e2eUnavailableReason, tripleFaultIn, where } from './harness';
import { tempDir } from '../testing/temp-dir';

const skip = e2eUnavailableReason();
const DRIVER = path.join(__dirname, 'api-driver.js');

describe(`the API end to end with Debian's cloud kernel (in ${where()})`, { skip }, () => {
  let report: Record<string, unknown>;

  before(async () => {
    const { vmlinuz } = await ensureDebianKernel();
    const initrd = await ensureDebianInitrd();
    const file = path.join(tempDir('sparkler-e2e-debian-api-'), 'report.json');
    const argv = [process.execPath, DRIVER, file, vmlinuz, initrd];
    if (detectKvmHost().kind === 'hardware') {
      spawnSync(argv[0]!, argv.slice(1), { stdio: 'inherit', timeout: 10 * 60_000 });
    } else {
      const { runInEmuHost } = await import('../emuhost');
      const r = await runInEmuHost(argv, { stdio: 'pipe', timeoutMs: 10 * 60_000, retriesIfWedged: 1, attemptTimeoutMs: 5 * 60_000, faultedIf: () => tripleFaultIn(path.dirname(file), (n) => n === 'report.json') });
      if (r.code !== 0) throw new Error(`The emulated KVM host run failed with code ${r.code}: ${r.stderr ?? ''}${r.stdout ?? ''}`);
    }
    report = JSON.parse(fs.readFileSync(file, 'utf8'));
  });

  test('boot source, machine config and InstanceStart boot Debian\'s kernel to the init contract', () => {
    const context = JSON.stringify(report, null, 1);
    assert.equal(report.error, undefined, context);
    assert.deepEqual([report.bootSource, report.machineConfig, report.instanceStart], [204, 204, 204], context);
    assert.match(String(report.output), /SPARKLER-INIT-OK cpus=2/, context);
    assert.match(String(report.output), new RegExp(READY_MARKER), context);
    assert.equal(report.stateBefore, 'Running');
  });

  test('SendCtrlAltDel reboots the guest and the VMM exits with 0', () => {
    const context = String(report.output).slice(-3000);
    assert.equal(report.ctrlAltDel, 204, context);
    assert.equal(report.exitCode, 0, context);
    assert.match(String(report.output), /Vmm is stopping \(guest reset\)/, context);
  });
});
