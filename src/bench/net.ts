/**
 * The network suite: TCP throughput each way, ping round trip and VMM CPU time per GiB moved,
 * Sparkler's virtio-net beside QEMU microvm's virtio-net-device on a TAP (vhost off), same
 * bzImage, initramfs and command line (src/bench/net-run.ts does the measuring). Runs where KVM
 * boots Linux at speed: here with hardware KVM, else inside the emulated KVM host.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { detectKvmHost } from '../host/kvm-host';
import { BenchContext } from './context';
import type { NetPlan, NetSample } from './net-run';
import { BenchEntry, makeEntry } from './results';

const MiB = 1024 * 1024;

export async function netSuite(ctx: BenchContext): Promise<BenchEntry[]> {
  const { ensureKernel, ensureInitrd } = await import('../guest');
  const shared = fs.mkdtempSync(path.join('/tmp', 'sparkler-bench-net-'));
  const plan: NetPlan = {
    sparklerBin: ctx.bin, qemu: ctx.qemu, bzImage: await ensureKernel({ format: 'bzimage' }), initrd: await ensureInitrd(),
    bytes: (ctx.quick ? 64 : 128) * MiB, runs: ctx.quick ? 3 : 5, memMiB: 256, timeoutMs: 300_000, out: path.join(shared, 'net.json'),
  };
  const planFile = path.join(shared, 'plan.json');
  fs.writeFileSync(planFile, JSON.stringify(plan));
  try {
    const host = detectKvmHost();
    let where: string;
    if (host.kind === 'hardware') {
      where = "this machine's /dev/kvm";
      await (await import('./net-run')).runNetPlan(plan, ctx.progress);
    } else {
      where = 'emulated KVM host (QEMU TCG, nested SVM)';
      ctx.progress('net suite: running inside the emulated KVM host (both VMMs on one TAP, one after the other)');
      const { runInEmuHost } = await import('../emuhost');
      const limit = plan.runs * 2 * (plan.timeoutMs / 2) + 180_000;
      const r = await runInEmuHost([process.execPath, path.join(__dirname, 'net-run.js'), planFile], { cwd: shared, stdio: 'inherit', timeoutMs: limit });
      if (r.code !== 0) ctx.problems.push(`net: the emulated KVM host run ended with code ${r.code}; the results are the runs it finished`);
    }
    const samples = fs.existsSync(plan.out) ? (JSON.parse(fs.readFileSync(plan.out, 'utf8')) as NetSample[]) : [];
    if (samples.length === 0) throw new Error('no run finished');
    return netEntries(ctx, samples, where, plan.bytes);
  } finally {
    fs.rmSync(shared, { recursive: true, force: true });
  }
}

export function netEntries(ctx: BenchContext, samples: NetSample[], where: string, bytes: number): BenchEntry[] {
  for (const s of samples) if (s.error) ctx.problems.push(`net ${s.vmm} run ${s.run + 1}: ${s.error}`);
  const pick = (vmm: string, f: (s: NetSample) => number | undefined): number[] =>
    samples.filter((s) => s.vmm === vmm).map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
  const both = (f: (s: NetSample) => number | undefined) => ({ sparkler: pick('sparkler', f), qemu: ctx.qemu ? pick('qemu', f) : undefined });
  const size = `${bytes / MiB} MiB over one TCP connection (busybox nc in the guest, Node on the host)`;
  const peer = 'QEMU microvm: virtio-net-device on the same TAP, vhost=off';
  return [
    makeEntry({ name: 'net_throughput_mibps/guest_to_host', unit: 'MiB/s', better: 'higher', where, ...both((s) => s.upMiBps), variant: `${size}, guest -> host; ${peer}` }),
    makeEntry({ name: 'net_throughput_mibps/host_to_guest', unit: 'MiB/s', better: 'higher', where, ...both((s) => s.downMiBps), variant: `${size}, host -> guest; ${peer}` }),
    makeEntry({ name: 'net_rtt_ms', unit: 'ms', where, ...both((s) => s.rttMs), variant: `the guest pings the host 5 times (busybox ping average); ${peer}` }),
    makeEntry({ name: 'net_rtt_ms/min', unit: 'ms', where, ...both((s) => s.rttMinMs), variant: `the fastest of those 5 round trips; ${peer}` }),
    makeEntry({ name: 'net_vmm_cpu_s_per_gib/guest_to_host', unit: 's/GiB', where, ...both((s) => s.upCpuSPerGiB), variant: `VMM utime + stime (/proc/PID/stat, all threads, vCPU included) over the transfer / GiB moved; ${size}` }),
    makeEntry({ name: 'net_vmm_cpu_s_per_gib/host_to_guest', unit: 's/GiB', where, ...both((s) => s.downCpuSPerGiB), variant: `as above, host -> guest` }),
    makeEntry({ name: 'net_vmm_cpu_s_per_gib/no_vcpu/guest_to_host', unit: 's/GiB', where, ...both((s) => s.upVmmCpuSPerGiB), variant: `the VMM's threads but the vCPU's (Sparkler: fc_vcpu 0; QEMU: CPU 0/KVM): device emulation and event loop, / GiB; guest -> host` }),
    makeEntry({ name: 'net_vmm_cpu_s_per_gib/no_vcpu/host_to_guest', unit: 's/GiB', where, ...both((s) => s.downVmmCpuSPerGiB), variant: `as above, host -> guest` }),
  ];
}
