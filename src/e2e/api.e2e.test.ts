/**
 * End to end through the API, for each guest kernel: Firecracker's getting-started sequence
 * (PUT /boot-source, PUT /machine-config, InstanceStart) boots it with its initramfs and no root
 * drive, and PUT /actions SendCtrlAltDel makes the guest reboot, which ends the VMM with exit
 * code 0 (the kernels reboot on Ctrl-Alt-Del by themselves; reboot=k sends the reboot through the
 * i8042 reset line).
 * - the project's microVM kernel and busybox initramfs;
 * - Debian's cloud kernel, whose initramfs loads the virtio modules and runs the busybox init
 *   contract from RAM (Debian's kernel drives the emulated i8042 itself).
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ensureDebianInitrd, ensureDebianKernel, ensureInitrd, ensureKernel } from '../guest';
import { READY_MARKER } from './api-driver';
import { e2eUnavailableReason, runReportDriver, where } from './harness';

const skip = e2eUnavailableReason();
const DRIVER = path.join(__dirname, 'api-driver.js');

const GUESTS = [
  { name: 'the microVM kernel', artifacts: async () => ({ kernel: await ensureKernel(), initrd: await ensureInitrd() }) },
  { name: "Debian's cloud kernel", artifacts: async () => ({ kernel: (await ensureDebianKernel()).vmlinuz, initrd: await ensureDebianInitrd() }) },
];

for (const guest of GUESTS) {
  describe(`the API end to end with ${guest.name} (in ${where()})`, { skip }, () => {
    let report: Record<string, unknown>;

    before(async () => {
      const { kernel, initrd } = await guest.artifacts();
      report = await runReportDriver(DRIVER, [kernel, initrd], { name: 'api', timeoutMs: 10 * 60_000, attemptTimeoutMs: 5 * 60_000, hardwareTimeoutMs: 10 * 60_000 });
    });

    test('getting started: boot source, machine config and InstanceStart boot Linux to init', () => {
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
}
