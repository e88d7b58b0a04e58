/**
 * The peer: QEMU's microvm machine (Debian qemu-system-x86) with KVM, configured as close to
 * Sparkler's device model as it goes: no firmware option ROMs, no defaults, one 16550 UART on
 * COM1, in-kernel irqchip and PIT, direct kernel boot (qboot loads the bzImage; a PVH ELF for the
 * tiny guests), the same RAM and vCPU count.
 *
 * How we see the guest reach init: the guest writes 123 at 0xC000_0000, as for Sparkler's boot
 * timer. Nothing is mapped there in microvm, so QEMU reports the access with `-d guest_errors`
 * ("Invalid write at addr 0xC0000000 ...") into its log, which we point at a FIFO we read: the
 * line arrives when QEMU handles the exit, the same moment Sparkler's boot timer logs.
 */
import { spawnSync } from 'node:child_process';
import { detectKvmHost } from '../host/kvm-host';

export const QEMU_INIT_LINE = /^Invalid write at addr 0xC0000000, size 1\b/;

export function findQemu(): string | undefined {
  const q = process.env.SPARKLER_QEMU ?? 'qemu-system-x86_64';
  const r = spawnSync(q, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? q : undefined;
}

export function qemuVersion(q: string): string {
  return (spawnSync(q, ['--version'], { encoding: 'utf8' }).stdout ?? '').split('\n')[0].trim();
}

/**
 * `-cpu host` everywhere but on PVM, whose KVM refuses QEMU's write of IA32_ARCH_CAPABILITIES
 * (QEMU aborts: "failed to set MSR 0x10a"); that MSR is left out there.
 */
export function qemuCpu(): string {
  return detectKvmHost().kind === 'pvm' ? 'host,-arch-capabilities' : 'host';
}

export interface QemuVm {
  kernel: string;
  initrd?: string;
  cmdline?: string;
  vcpus: number;
  memMiB: number;
  /** -d guest_errors -D <log>: where the init mark shows up. */
  log?: string;
  /** Start paused with QMP on this Unix socket (-S): the `cont` command plays InstanceStart. */
  qmp?: string;
  /** Add isa-debug-exit at port 0xf4 (tiny guests end QEMU through it). */
  debugExit?: boolean;
}

export function microvmArgs(vm: QemuVm): string[] {
  return [
    '-M', 'microvm,x-option-roms=off', '-accel', 'kvm', '-cpu', qemuCpu(),
    '-m', String(vm.memMiB), '-smp', String(vm.vcpus),
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-serial', 'stdio',
    '-kernel', vm.kernel,
    ...(vm.initrd ? ['-initrd', vm.initrd] : []),
    ...(vm.cmdline !== undefined ? ['-append', vm.cmdline] : []),
    ...(vm.log ? ['-d', 'guest_errors', '-D', vm.log] : []),
    ...(vm.qmp ? ['-S', '-qmp', `unix:${vm.qmp},server=on,wait=off`] : []),
    ...(vm.debugExit ? ['-device', 'isa-debug-exit,iobase=0xf4,iosize=4'] : []),
  ];
}
