/**
 * Boot time to the guest's init, Sparkler beside QEMU microvm, on the same bzImage, initramfs,
 * command line, RAM and vCPU count, one boot after the other (order alternating) on the same
 * host. The guest's init writes 123 at 0xC000_0000; both VMMs report that write on a pipe the
 * moment they handle the exit (Sparkler's boot-timer log line on stdout; QEMU's guest_errors
 * log line on a FIFO), and this harness timestamps the arrival. Two spans:
 *   process: spawn() of the VMM -> init (Sparkler --no-api --config-file; QEMU's command line);
 *   api:     InstanceStart sent -> init (Sparkler: PUT /actions after PUT /boot-source and
 *            /machine-config; QEMU: started with -S, the QMP `cont` command).
 * Where /dev/kvm cannot boot stock Linux at speed (PVM), the whole suite runs inside the
 * emulated KVM host, both VMMs in the same run (src/emuhost).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { httpUnix, killAndWait, firstLine, now, openFifo, Qmp, spawnTimed, waitForSocket, withTimeout, watchLines } from './proc';
import { microvmArgs, QEMU_INIT_LINE } from './qemu';

export type BootVmm = 'sparkler' | 'qemu' | 'sparkler-vmlinux';
export type BootMode = 'process' | 'api';

export interface BootConfig {
  console: boolean;
  vcpus: number;
  modes: BootMode[];
  /** Also boot Sparkler with the ELF vmlinux (no in-guest decompression); QEMU cannot boot it. */
  vmlinux?: boolean;
}

export interface BootPlan {
  sparklerBin: string;
  qemu?: string;
  bzImage: string;
  vmlinux: string;
  initrd: string;
  memMiB: number;
  runs: number;
  configs: BootConfig[];
  timeoutMs: number;
  out: string;
}

export interface BootSample {
  vmm: BootVmm;
  console: boolean;
  vcpus: number;
  mode: BootMode;
  run: number;
  /** The span measured by this harness, ms; undefined when the boot failed. */
  ms?: number;
  /** Sparkler's own boot-timer figure (Node's process start -> init), ms. */
  selfMs?: number;
  error?: string;
}

export interface BootResults {
  host: string;
  where: string;
  samples: BootSample[];
}

export const BOOT_ARGS = 'reboot=k panic=1 pci=off';
export const cmdlineFor = (console: boolean): string => (console ? `console=ttyS0 ${BOOT_ARGS}` : BOOT_ARGS);

const SPARKLER_INIT_LINE = /Guest-boot-time = +(\d+) us/;

/** A private directory on tmpfs for sockets and FIFOs (inside the emulated host /tmp is 9p). */
export function scratchDir(tag: string): string {
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  try {
    return fs.mkdtempSync(path.join(base, `sparkler-bench-${tag}-`));
  } catch {
    return fs.mkdtempSync(path.join(os.tmpdir(), `sparkler-bench-${tag}-`));
  }
}

interface OneBoot {
  kernel: string;
  console: boolean;
  vcpus: number;
}

async function sparklerProcess(plan: BootPlan, dir: string, b: OneBoot): Promise<{ ms: number; selfMs: number }> {
  const config = path.join(dir, 'vm.json');
  fs.writeFileSync(config, JSON.stringify({
    'boot-source': { kernel_image_path: b.kernel, initrd_path: plan.initrd, boot_args: cmdlineFor(b.console) },
    'machine-config': { vcpu_count: b.vcpus, mem_size_mib: plan.memMiB },
  }));
  const p = spawnTimed(plan.sparklerBin, ['--no-api', '--boot-timer', '--config-file', config]);
  try {
    const { at, match } = await withTimeout(firstLine(p, p.child.stdout, SPARKLER_INIT_LINE), plan.timeoutMs, 'Sparkler boot');
    return { ms: at - p.startedAt, selfMs: Number(match[1]) / 1000 };
  } finally {
    await killAndWait(p);
  }
}

async function sparklerApi(plan: BootPlan, dir: string, b: OneBoot): Promise<{ ms: number; selfMs: number }> {
  const sock = path.join(dir, 'api.sock');
  const p = spawnTimed(plan.sparklerBin, ['--api-sock', sock, '--boot-timer']);
  try {
    const init = firstLine(p, p.child.stdout, SPARKLER_INIT_LINE);
    init.catch(() => undefined);
    await waitForSocket(sock, p, plan.timeoutMs);
    for (const [route, body] of [
      ['/boot-source', { kernel_image_path: b.kernel, initrd_path: plan.initrd, boot_args: cmdlineFor(b.console) }],
      ['/machine-config', { vcpu_count: b.vcpus, mem_size_mib: plan.memMiB }],
    ] as const) {
      const r = await httpUnix(sock, 'PUT', route, body);
      if (r.status !== 204) throw new Error(`PUT ${route} answered ${r.status}: ${r.body}`);
    }
    const sent = now();
    httpUnix(sock, 'PUT', '/actions', { action_type: 'InstanceStart' }).catch(() => undefined);
    const { at, match } = await withTimeout(init, plan.timeoutMs, 'Sparkler boot after InstanceStart');
    return { ms: at - sent, selfMs: Number(match[1]) / 1000 };
  } finally {
    await killAndWait(p);
  }
}

async function qemuBoot(plan: BootPlan, dir: string, b: OneBoot, mode: BootMode): Promise<{ ms: number }> {
  const log = path.join(dir, 'qemu.log');
  const fifo = openFifo(log);
  const qmpSock = mode === 'api' ? path.join(dir, 'qmp.sock') : undefined;
  const p = spawnTimed(plan.qemu!, microvmArgs({
    kernel: b.kernel, initrd: plan.initrd, cmdline: cmdlineFor(b.console), vcpus: b.vcpus, memMiB: plan.memMiB, log, qmp: qmpSock,
  }));
  watchLines(p.child.stdout, () => undefined); // the serial console: drained, not kept
  try {
    const init = firstLine(p, fifo, QEMU_INIT_LINE);
    init.catch(() => undefined);
    let from = p.startedAt;
    if (qmpSock) {
      await waitForSocket(qmpSock, p, plan.timeoutMs);
      const qmp = await Qmp.connect(qmpSock);
      try {
        await qmp.next(); // greeting
        await qmp.command('qmp_capabilities');
        from = now();
        qmp.command('cont').catch(() => undefined);
        const { at } = await withTimeout(init, plan.timeoutMs, 'QEMU boot after cont');
        return { ms: at - from };
      } finally {
        qmp.close();
      }
    }
    const { at } = await withTimeout(init, plan.timeoutMs, 'QEMU boot');
    return { ms: at - from };
  } finally {
    await killAndWait(p);
    fifo.destroy();
  }
}

/** Runs the plan where it is (the caller chose a host whose KVM boots Linux at speed). */
export async function runBootPlan(plan: BootPlan, progress: (line: string) => void): Promise<BootResults> {
  const samples: BootSample[] = [];
  for (let run = 0; run < plan.runs; run++) {
    for (const c of plan.configs) {
      for (const mode of c.modes) {
        const vmms: BootVmm[] = plan.qemu ? ['sparkler', 'qemu'] : ['sparkler'];
        if (run % 2 === 1) vmms.reverse();
        if (c.vmlinux && mode === 'process') vmms.push('sparkler-vmlinux');
        for (const vmm of vmms) {
          const dir = scratchDir('boot');
          const sample: BootSample = { vmm, console: c.console, vcpus: c.vcpus, mode, run };
          const kernel = vmm === 'sparkler-vmlinux' ? plan.vmlinux : plan.bzImage;
          const one = { kernel, console: c.console, vcpus: c.vcpus };
          try {
            if (vmm === 'qemu') Object.assign(sample, await qemuBoot(plan, dir, one, mode));
            else Object.assign(sample, mode === 'api' ? await sparklerApi(plan, dir, one) : await sparklerProcess(plan, dir, one));
          } catch (err) {
            sample.error = (err as Error).message;
          } finally {
            fs.rmSync(dir, { recursive: true, force: true });
          }
          samples.push(sample);
          progress(`boot ${run + 1}/${plan.runs} ${vmm} ${mode} console=${c.console ? 'on' : 'off'} vcpus=${c.vcpus}: ${sample.ms !== undefined ? `${sample.ms.toFixed(1)} ms` : `failed (${sample.error})`}`);
        }
      }
    }
  }
  return { host: os.hostname(), where: '', samples };
}

/** Entry point inside the emulated host: node dist/bench/boot.js PLAN.json */
async function main(planFile: string): Promise<void> {
  const plan = JSON.parse(fs.readFileSync(planFile, 'utf8')) as BootPlan;
  const results = await runBootPlan(plan, (line) => process.stderr.write(`[bench] ${line}\n`));
  fs.writeFileSync(plan.out, JSON.stringify(results));
}

if (require.main === module) {
  main(process.argv[2]).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`[bench] boot suite failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
