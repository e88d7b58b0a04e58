/**
 * The tables in front of a real Linux: the project's microVM kernel boots under QEMU's
 * emulator (TCG, no KVM needed) on a `microvm` machine with QEMU's own ACPI turned off, and our
 * tables are loaded at 0xE0000 with QEMU's generic loader, where the kernel finds the RSDP by
 * its scan. A tiny isa-debug-exit device at SLEEP_CONTROL_PORT ends QEMU with
 * (value << 1) | 1 when the guest writes there, which shows `poweroff` reaching our sleep
 * control register with SLP_TYP 5 | SLP_EN. Skipped, saying why, without QEMU or the kernel.
 *
 * QEMU's virtio-mmio windows are 0x200 bytes and its placement differs between versions, so
 * a first, short boot reads the `virtio_mmio.device=` entry QEMU appends to the command line
 * and the DSDT describes exactly that window: the same window twice, as Sparkler does (command
 * line and DSDT), so this also shows which of the two Linux ends up using.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { QEMU, qemuKernelSkipReason } from '../../../testing/qemu-tcg';
import { ensureInitrd, guestCachePaths } from '../../../guest/index';
import { buildAcpiTables, S5_SLEEP_CONTROL_VALUE, SLEEP_CONTROL_PORT } from './index';

const skip = qemuKernelSkipReason();

const MICROVM = ['-M', 'microvm,x-option-roms=off,pit=on,pic=on,rtc=on,acpi=off'];
const CMDLINE = 'console=ttyS0 reboot=t panic=1 pci=off tsc_early_khz=2000000';

interface Run { output: string; code: number | null; timedOut: boolean }

/** Run QEMU until it exits, `until` matches the output (then it is killed), or the timeout. */
function qemu(args: string[], opts: { until?: RegExp; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(QEMU, ['-accel', 'tcg', '-cpu', 'max', '-m', '256', '-nodefaults', '-no-user-config',
      '-display', 'none', '-serial', 'stdio', '-no-reboot', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let timedOut = false;
    const onData = (d: Buffer) => {
      output += d.toString();
      if (opts.until?.test(output)) child.kill('SIGKILL');
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ output, code, timedOut }); });
  });
}

test('Linux finds the CPUs, the virtio device and COM1 through our tables, and poweroff writes S5 to the sleep control port', { skip }, async () => {
  const kernel = guestCachePaths().kernel.bzImage;
  const initrd = await ensureInitrd();
  const rng = ['-device', 'virtio-rng-device'];

  // 1. Where does this QEMU put the virtio device? Its kernel command line says.
  const probe = await qemu([...MICROVM, '-kernel', kernel, '-initrd', initrd, ...rng, '-append', CMDLINE],
    { until: /virtio_mmio\.device=\S+/, timeoutMs: 60_000 });
  const m = /virtio_mmio\.device=(\d+)@(0x[0-9a-f]+):(\d+)/i.exec(probe.output);
  assert.ok(m, `QEMU put no virtio_mmio.device= on the command line:\n${probe.output}`);
  const device = { size: Number(m[1]), address: Number(m[2]), gsi: Number(m[3]) };

  // 2. Boot with our tables at 0xE0000 (RSDP first) and a port that turns a write into an exit code.
  const tables = buildAcpiTables({ vcpuCount: 3, virtioDevices: [device] });
  assert.equal(tables.rsdp, 0xe0000);
  const dir = mkdtempSync(path.join(tmpdir(), 'sparkler-acpi-qemu-'));
  try {
    const blob = path.join(dir, 'acpi.bin');
    writeFileSync(blob, tables.bytes);
    const cmd = [
      'dmesg | grep -E "ACPI|virtio|ttyS0 at|LNRO|smpboot|i8042"',
      'grep -E "ttyS0|virtio" /proc/interrupts',
      'ls -1 /sys/bus/platform/drivers/virtio-mmio',
      'echo HWRNG-BYTES=$(head -c 8 /dev/hwrng | wc -c)',
      'poweroff -f',
    ].join('; ');
    const boot = await qemu([...MICROVM, '-smp', '3', '-kernel', kernel, '-initrd', initrd, ...rng,
      '-device', `loader,file=${blob},addr=0x${tables.rsdp.toString(16)},force-raw=on`,
      '-device', `isa-debug-exit,iobase=0x${SLEEP_CONTROL_PORT.toString(16)},iosize=1`,
      '-append', `${CMDLINE} sparkler.cmd=${Buffer.from(cmd).toString('base64')}`]);
    const out = boot.output;
    assert.equal(boot.timedOut, false, `the guest did not power off:\n${out}`);
    // isa-debug-exit: QEMU exits with (value << 1) | 1.
    assert.equal(boot.code, (S5_SLEEP_CONTROL_VALUE << 1) | 1, `poweroff did not write 0x34 to port 0x600:\n${out}`);
    assert.match(out, /ACPI: RSDP 0x0+E0000 000024 \(v02 SPRKLR\)/);
    for (const sig of ['XSDT', 'FACP', 'APIC', 'DSDT']) assert.match(out, new RegExp(`ACPI: ${sig} 0x0+E0[0-9A-F]{3} [0-9A-F]{6} \\(v0\\d SPRKLR SPARKLER`), sig);
    assert.match(out, /ACPI: Using ACPI \(MADT\) for SMP configuration information/);
    assert.match(out, /^SPARKLER-INIT-OK cpus=3\r?$/m);
    assert.match(out, /ACPI: 1 ACPI AML tables successfully acquired and loaded/);
    assert.match(out, /ACPI: PM: \(supports S0 S5\)/);
    assert.match(out, /ACPI: PM: Preparing to enter system sleep state S5/);
    assert.doesNotMatch(out, /ACPI (BIOS )?(Error|Warning)|ACPI Exception/);
    // COM1 from the DSDT: its IRQ is routed through the I/O APIC pin 4, edge-triggered.
    assert.match(out, /IO-APIC\s+4-edge\s+ttyS0/);
    // The DSDT's device got the window (the command-line copy of it loses the race) and its GSI.
    assert.match(out, /^LNRO0005:00\r?$/m, 'the virtio-mmio driver is bound to the DSDT device');
    assert.match(out, new RegExp(`IO-APIC\\s+${device.gsi}-edge\\s+virtio0`));
    assert.match(out, /^HWRNG-BYTES=8\r?$/m, 'virtio-rng works');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
