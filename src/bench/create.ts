/**
 * Creation rate: complete tiny-guest VM lives (spawn the VMM, build the VM, run the guest to its
 * mark, end) per second, with `c` launches kept in flight, for rising c until the machine is
 * saturated; the best level, divided by the host's CPU count, is the rate per core. Sparkler:
 * --no-api --config-file with a guest that marks and resets through the i8042. QEMU: microvm
 * with a PVH guest that marks and leaves through isa-debug-exit.
 */
import * as os from 'node:os';
import { BenchContext } from './context';
import { QEMU_MARK_EXIT, SPARKLER_MARK_RESET } from './guests';
import { now, spawnTimed, vmmEnv, withTimeout } from './proc';
import { microvmArgs } from './qemu';
import { BenchEntry, makeEntry } from './results';
import { guestFile, sparklerConfig, TINY_MEM_MIB } from './tiny-vms';

type Vmm = 'sparkler' | 'qemu';

function launcher(ctx: BenchContext, vmm: Vmm): () => Promise<boolean> {
  if (vmm === 'sparkler') {
    const config = sparklerConfig(ctx, guestFile(ctx, 'sparkler-mark-reset.elf', SPARKLER_MARK_RESET()));
    return async () => {
      const p = spawnTimed(ctx.bin, ['--no-api', '--config-file', config], { stdio: 'ignore', env: vmmEnv() });
      return (await withTimeout(p.exited, 60_000, 'a Sparkler tiny VM')) === 0;
    };
  }
  const kernel = guestFile(ctx, 'qemu-mark-exit.elf', QEMU_MARK_EXIT());
  const args = microvmArgs({ kernel, vcpus: 1, memMiB: TINY_MEM_MIB, debugExit: true });
  return async () => {
    const p = spawnTimed(ctx.qemu!, args, { stdio: 'ignore' });
    // isa-debug-exit with value 0 ends QEMU with status (0 << 1) | 1.
    return (await withTimeout(p.exited, 60_000, 'a QEMU tiny VM')) === 1;
  };
}

/** VMs completed per second during a window with `inFlight` launches kept going. */
async function window(launch: () => Promise<boolean>, inFlight: number, ms: number): Promise<{ rate: number; failures: number }> {
  const start = now();
  const end = start + ms;
  let done = 0;
  let failures = 0;
  const worker = async (): Promise<void> => {
    while (now() < end) {
      const ok = await launch().catch(() => false);
      if (now() > end) return; // finished after the window: not counted
      if (ok) done++;
      else failures++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return { rate: done / (ms / 1000), failures };
}

export async function createSuite(ctx: BenchContext): Promise<BenchEntry[]> {
  const cores = os.cpus().length;
  const levels = ctx.quick ? [1, 2, 4] : [1, 2, 4, 8, 16];
  const windowMs = ctx.quick ? 3000 : 8000;
  const extra = ctx.quick ? 2 : 4;
  const vmms: Vmm[] = ctx.qemu ? ['sparkler', 'qemu'] : ['sparkler'];
  const perCore: Record<Vmm, number[]> = { sparkler: [], qemu: [] };
  const best: Record<Vmm, number> = { sparkler: 0, qemu: 0 };
  for (const vmm of vmms) {
    const launch = launcher(ctx, vmm);
    let top = { level: 1, rate: -1 };
    for (const level of levels) {
      const w = await window(launch, level, windowMs);
      ctx.progress(`create ${vmm} in flight ${level}: ${w.rate.toFixed(2)} VMs/s (${(w.rate / cores).toFixed(2)} per core)${w.failures ? `, ${w.failures} failed` : ''}`);
      if (w.failures) ctx.problems.push(`create rate, ${vmm}, ${level} in flight: ${w.failures} VMs did not end cleanly`);
      if (w.rate > top.rate) top = { level, rate: w.rate };
      perCore[vmm].push(w.rate / cores);
      if (w.rate < top.rate * 0.9) break; // past saturation
    }
    // Repeat at the saturating level: those windows and the best one are the samples.
    perCore[vmm] = [top.rate / cores];
    for (let i = 0; i < extra; i++) {
      const w = await window(launch, top.level, windowMs);
      perCore[vmm].push(w.rate / cores);
      ctx.progress(`create ${vmm} at ${top.level} in flight, repeat ${i + 1}/${extra}: ${(w.rate / cores).toFixed(2)} per core`);
    }
    best[vmm] = top.level;
  }
  return [
    makeEntry({
      name: 'create_per_core_s', unit: 'VMs/s per core', better: 'higher', where: ctx.localKvm,
      sparkler: perCore.sparkler, qemu: ctx.qemu ? perCore.qemu : undefined,
      variant: `complete tiny-guest VM lives per second / ${cores} CPUs, at the saturating number in flight (Sparkler ${best.sparkler}${ctx.qemu ? `, QEMU ${best.qemu}` : ''}), ${windowMs / 1000} s windows`,
    }),
  ];
}
