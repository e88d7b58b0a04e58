/**
 * End to end: the project's microVM kernel and initramfs boot to init with 1 and 2 vCPUs; the
 * guest sees every vCPU, writes the boot timer, runs a command from the kernel command line and
 * reboots, which ends the VMM with exit code 0.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ensureInitrd, ensureKernel } from '../guest';
import { BootResult, e2eUnavailableReason, runBoots, where, writeVmConfig } from './harness';

const skip = e2eUnavailableReason();
const BOOT_ARGS = 'console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd';
/**
 * The guest's console without the VMM's own log lines. The guest's UART driver may still be
 * sending a line when init writes the boot timer, so the VMM's log line can land mid-line.
 */
function guestConsole(stdout: string): string {
  return stdout.replace(/\d{4}-\d\d-\d\dT[\d:.]+ \[anonymous-instance:main\] [^\n]*\n?/g, '');
}

const GUEST_CMD = 'echo guest-says-$((6*7)); cat /proc/cpuinfo | grep -c ^processor';

describe(`booting the microVM kernel to init (in ${where()})`, { skip }, () => {
  let results: Map<string, BootResult>;

  before(async () => {
    const kernel = await ensureKernel();
    const initrd = await ensureInitrd();
    const config = (vcpus: number, extraArgs = '') => writeVmConfig({
      'boot-source': { kernel_image_path: kernel, initrd_path: initrd, boot_args: `${BOOT_ARGS}${extraArgs}` },
      'machine-config': { vcpu_count: vcpus, mem_size_mib: 128 },
    });
    const cmd = ` sparkler.cmd=${Buffer.from(GUEST_CMD).toString('base64')}`;
    results = await runBoots([
      { name: 'one-vcpu', args: ['--no-api', '--boot-timer', '--config-file', config(1)] },
      { name: 'two-vcpus', args: ['--no-api', '--boot-timer', '--config-file', config(2, cmd)] },
    ]);
  });

  for (const [name, vcpus] of [['one-vcpu', 1], ['two-vcpus', 2]] as const) {
    test(`${vcpus} vCPU(s): init runs, sees ${vcpus} CPU(s), the boot timer fires, exit code 0`, () => {
      const r = results.get(name)!;
      const context = `stdout:\n${r.stdout.slice(-3000)}\nstderr:\n${r.stderr.slice(-2000)}`;
      assert.equal(r.code, 0, context);
      assert.match(guestConsole(r.stdout), new RegExp(`SPARKLER-INIT-OK cpus=${vcpus}\\b`), context);
      assert.match(r.stdout, /\[anonymous-instance:main\] Guest-boot-time = +\d+ us \d+ ms, +\d+ CPU us \d+ CPU ms/, context);
      assert.match(r.stdout, /Vmm is stopping \(guest reset\)/, context);
    });
  }

  test('a command passed on the kernel command line runs in the guest', () => {
    const r = results.get('two-vcpus')!;
    const guest = guestConsole(r.stdout);
    assert.match(guest, /guest-says-42/, r.stdout);
    assert.match(guest, /^2\r?$/m, 'the guest counts 2 processors');
    assert.match(guest, /SPARKLER-CMD-EXIT=0/, r.stdout);
  });
});
