/** The QEMU command line of the emulated KVM host. */
import { SparklerError } from '../errors';
import type { Share, ShareModel } from './script';
import { which } from './tools';

export const MARKER = 'sparkler.emuhost=1';

export function findQemu(): string {
  const q = process.env.SPARKLER_QEMU ?? which('qemu-system-x86_64');
  if (!q || !which(q)) {
    throw new SparklerError('EMUHOST_NO_QEMU',
      'QEMU is not installed (qemu-system-x86_64 not found): apt-get install qemu-system-x86 (or set SPARKLER_QEMU).');
  }
  return q;
}

/** Where the emulated host's QEMU listens for its human monitor. */
export function monitorSocket(runDir: string): string {
  return `${runDir}/monitor.sock`;
}

export interface QemuPlan {
  kernel: string;
  initrd: string;
  runDir: string;
  consoleLog: string;
  shares: Share[];
  memoryMiB: number;
  cpus: number;
}

function virtfs(path: string, tag: string, model: ShareModel, readonly: boolean): string[] {
  // Commas in a path are doubled for QEMU's option parser. multidevs=remap keeps inode
  // numbers unique when the shared tree spans several host filesystems.
  const p = path.replace(/,/g, ',,');
  return ['-virtfs', `local,path=${p},mount_tag=${tag},security_model=${model},multidevs=remap${readonly ? ',readonly=on' : ''}`];
}

export function qemuArgs(plan: QemuPlan): string[] {
  return [
    // TCG with an AMD CPU that has SVM and nested paging: kvm-amd inside gives a real /dev/kvm.
    // XSAVE stays although nested guests see stale XCR0 sizes (src/emuhost/README.md): without
    // it they failed as often, and the snapshot tests would no longer carry XSAVE state.
    '-M', 'q35', '-accel', process.env.SPARKLER_EMUHOST_ACCEL ?? 'tcg,thread=multi', '-cpu', process.env.SPARKLER_EMUHOST_CPU ?? 'EPYC-Rome,+svm,+npt',
    '-m', String(plan.memoryMiB), '-smp', String(plan.cpus),
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    // The kernel's console goes to a file, kept for diagnostics, never to our stdout.
    '-chardev', `file,id=con,path=${plan.consoleLog.replace(/,/g, ',,')}`, '-serial', 'chardev:con',
    // The human monitor, asked for the vCPUs' registers when a run stalls (monitor.ts).
    '-monitor', `unix:${monitorSocket(plan.runDir).replace(/,/g, ',,')},server=on,wait=off`,
    '-kernel', plan.kernel, '-initrd', plan.initrd,
    // No crypto self-tests (~0.35 s under TCG), no speculation mitigations (a throwaway host).
    // A loaded machine starves TCG's vCPU threads, which fails boot-time timing checks: skip the
    // IO-APIC timer check (else "IO-APIC + timer doesn't work!" panics) and the lockup watchdogs;
    // TCG's TSC is the host's, synchronised, so keep it as clocksource (HPET reads are slow).
    '-append', `console=ttyS0 quiet panic=-1 cryptomgr.notests mitigations=off no_timer_check nowatchdog tsc=reliable ${process.env.SPARKLER_EMUHOST_APPEND ?? ""} ${MARKER}`,
    ...virtfs('/', 'root', 'none', true),
    ...virtfs(plan.runDir, 'run', 'none', false),
    ...plan.shares.flatMap((s) => virtfs(s.path, s.tag, s.model, false)),
  ];
}
