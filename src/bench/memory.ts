/**
 * VMM memory overhead: what a VMM process holds beyond the guest RAM the guest touched.
 * One idle tiny-guest VM (128 MiB, 1 vCPU) per process, measured from /proc/PID/smaps once
 * the guest has marked and the process has settled:
 *   private = Private_Clean + Private_Dirty of every mapping, minus those of guest RAM;
 *   PSS     = Pss of every mapping minus guest RAM's (shared pages split among sharers: with 20
 *             VMs the node or qemu binary and libraries are shared 20 ways).
 * Guest RAM is the anonymous mapping of the guest's size (src/bench/proc.ts memoryUse).
 * For 1 VM: a fresh process per run. For 20 VMs: 20 processes up at once, each measured.
 */
import * as fs from 'node:fs';
import { BenchContext, SparklerVariant } from './context';
import { QEMU_IDLE, SPARKLER_IDLE } from './guests';
import { killAndWait, readMemoryUse, sleep, spawnTimed, vmmEnv } from './proc';
import { qemuCpu } from './qemu';
import { BenchEntry, makeEntry } from './results';
import { guestFile, sparklerConfig, startQemu, startSparkler, Started, TINY_MEM_MIB } from './tiny-vms';

interface Sample {
  privateMiB: number;
  privateDirtyMiB: number;
  pssMiB: number;
  guestTouchedMiB: number;
}

type Vmm = 'sparkler' | 'qemu' | 'experiment';

async function start(ctx: BenchContext, vmm: Vmm): Promise<Started> {
  const config = (): string => sparklerConfig(ctx, guestFile(ctx, 'sparkler-idle.elf', SPARKLER_IDLE()));
  if (vmm === 'sparkler') return startSparkler(ctx, config());
  if (vmm === 'experiment') return startSparkler(ctx, config(), experiment(ctx));
  return startQemu(ctx, { kernel: guestFile(ctx, 'qemu-idle.elf', QEMU_IDLE()), vcpus: 1, memMiB: TINY_MEM_MIB });
}

const experiment = (ctx: BenchContext): SparklerVariant | undefined => ctx.experiments.find((v) => v.name === 'unbundled');

/** The floor under any Node VMM: an idle `node` process with an event loop and nothing else. */
async function nodeFloorMiB(settleMs: number): Promise<{ privateMiB: number; pssMiB: number }> {
  const p = spawnTimed(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore', env: vmmEnv() });
  try {
    await sleep(settleMs);
    const use = readMemoryUse(p.child.pid!, TINY_MEM_MIB);
    return { privateMiB: use.privateKiB / 1024, pssMiB: use.pssKiB / 1024 };
  } finally {
    await killAndWait(p);
  }
}

function measure(s: Started): Sample {
  const use = readMemoryUse(s.p.child.pid!, TINY_MEM_MIB);
  return {
    privateMiB: (use.privateKiB - use.guest.privateKiB) / 1024,
    privateDirtyMiB: (use.privateDirtyKiB - use.guest.privateDirtyKiB) / 1024,
    pssMiB: (use.pssKiB - use.guest.pssKiB) / 1024,
    guestTouchedMiB: use.guest.rssKiB / 1024,
  };
}

async function stopAll(vms: Started[]): Promise<void> {
  await Promise.all(vms.map(async (v) => {
    await killAndWait(v.p);
    v.fifo?.destroy();
  }));
}

/** Runs `count` VMs at once, lets them settle, measures each. */
async function concurrent(ctx: BenchContext, vmm: Vmm, count: number, settleMs: number): Promise<Sample[]> {
  const vms: Started[] = [];
  try {
    // Started a few at a time: all at once on 2 cores would only measure the scheduler.
    for (let i = 0; i < count; i += 4) {
      const batch = await Promise.allSettled(Array.from({ length: Math.min(4, count - i) }, () => start(ctx, vmm)));
      for (const b of batch) if (b.status === 'fulfilled') vms.push(b.value);
      const failed = batch.find((b): b is PromiseRejectedResult => b.status === 'rejected');
      if (failed) throw failed.reason;
    }
    await sleep(settleMs);
    return vms.map(measure);
  } finally {
    await stopAll(vms);
  }
}

function memAvailableMiB(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export async function memorySuite(ctx: BenchContext): Promise<BenchEntry[]> {
  const runs = ctx.quick ? 3 : 7;
  const many = 20;
  const settleMs = ctx.quick ? 1500 : 3000;
  const vmms: Vmm[] = ctx.qemu ? ['sparkler', 'qemu'] : ['sparkler'];
  const one: Record<Vmm, Sample[]> = { sparkler: [], qemu: [], experiment: [] };
  const crowd: Record<Vmm, Sample[]> = { sparkler: [], qemu: [], experiment: [] };
  const floor: { privateMiB: number; pssMiB: number }[] = [];
  const withExperiment: Vmm[] = experiment(ctx) ? [...vmms, 'experiment'] : vmms;
  for (let r = 0; r < runs; r++) {
    try {
      floor.push(await nodeFloorMiB(settleMs));
    } catch (err) {
      ctx.problems.push(`memory, idle node: ${(err as Error).message}`);
    }
    for (const vmm of r % 2 ? [...withExperiment].reverse() : withExperiment) {
      try {
        const [s] = await concurrent(ctx, vmm, 1, settleMs);
        one[vmm].push(s);
        ctx.progress(`memory 1 VM ${vmm} run ${r + 1}/${runs}: private ${s.privateMiB.toFixed(1)} MiB, PSS ${s.pssMiB.toFixed(1)} MiB (guest touched ${s.guestTouchedMiB.toFixed(2)} MiB)`);
      } catch (err) {
        ctx.problems.push(`memory, 1 VM, ${vmm}: ${(err as Error).message}`);
      }
    }
  }
  for (const vmm of vmms) {
    try {
      crowd[vmm] = await concurrent(ctx, vmm, many, settleMs);
      const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
      ctx.progress(`memory ${many} VMs ${vmm}: median private ${med(crowd[vmm].map((s) => s.privateMiB)).toFixed(1)} MiB, PSS ${med(crowd[vmm].map((s) => s.pssMiB)).toFixed(1)} MiB per VM`);
    } catch (err) {
      ctx.problems.push(`memory, ${many} VMs, ${vmm}: ${(err as Error).message}`);
    }
  }
  const where = ctx.localKvm;
  const qemuNote = ctx.qemu ? `QEMU microvm, -cpu ${qemuCpu()}, PVH tiny guest` : 'QEMU not installed';
  const pick = (xs: Sample[], f: (s: Sample) => number) => xs.map(f);
  const available = memAvailableMiB();
  const entries = [
    makeEntry({
      name: 'vmm_private_mib', unit: 'MiB', where, sparkler: pick(one.sparkler, (s) => s.privateMiB), qemu: ctx.qemu ? pick(one.qemu, (s) => s.privateMiB) : undefined,
      variant: '1 idle VM, 128 MiB, 1 vCPU; Private_Clean+Private_Dirty minus guest RAM', note: qemuNote,
    }),
    makeEntry({
      name: 'vmm_private_mib/dirty_only', unit: 'MiB', where, sparkler: pick(one.sparkler, (s) => s.privateDirtyMiB), qemu: ctx.qemu ? pick(one.qemu, (s) => s.privateDirtyMiB) : undefined,
      variant: '1 idle VM; Private_Dirty alone minus guest RAM (Private_Clean, binary pages no other process maps at that moment, depends on what else runs)',
    }),
    makeEntry({
      name: 'vmm_pss_mib', unit: 'MiB', where, sparkler: pick(one.sparkler, (s) => s.pssMiB), qemu: ctx.qemu ? pick(one.qemu, (s) => s.pssMiB) : undefined,
      variant: '1 idle VM; PSS minus guest RAM',
    }),
    makeEntry({
      name: `vmm_private_mib/${many}_vms`, unit: 'MiB per VM', where, sparkler: pick(crowd.sparkler, (s) => s.privateMiB), qemu: ctx.qemu ? pick(crowd.qemu, (s) => s.privateMiB) : undefined,
      variant: `${many} idle VMs at once, each process measured; runs = processes`,
    }),
    makeEntry({
      name: `vmm_pss_mib/${many}_vms`, unit: 'MiB per VM', where, sparkler: pick(crowd.sparkler, (s) => s.pssMiB), qemu: ctx.qemu ? pick(crowd.qemu, (s) => s.pssMiB) : undefined,
      variant: `${many} idle VMs at once; PSS minus guest RAM (shared code counted once across them)`,
    }),
    makeEntry({
      name: 'vms_per_host_estimate', unit: 'VMs', better: 'higher', where,
      sparkler: pick(crowd.sparkler, (s) => available / (s.pssMiB + s.guestTouchedMiB)),
      qemu: ctx.qemu ? pick(crowd.qemu, (s) => available / (s.pssMiB + s.guestTouchedMiB)) : undefined,
      variant: `MemAvailable (${available.toFixed(0)} MiB now) / (PSS overhead + touched guest RAM) of the ${many}-VM run; untouched guest RAM not counted`,
      note: 'an estimate: the VMs were not run until memory ran out',
    }),
    makeEntry({
      name: 'vmm_private_mib/node_floor', unit: 'MiB', where, sparkler: floor.map((f) => f.privateMiB), qemu: ctx.qemu ? pick(one.qemu, (s) => s.privateMiB) : undefined,
      variant: "an idle `node -e 'setInterval(...)'` process (no VMM code): the floor under any VMM written for Node, beside QEMU's VMM overhead",
    }),
  ];
  if (one.experiment.length > 0) {
    entries.push(makeEntry({
      name: 'vmm_private_mib/unbundled', unit: 'MiB', where, sparkler: pick(one.experiment, (s) => s.privateMiB), qemu: ctx.qemu ? pick(one.qemu, (s) => s.privateMiB) : undefined,
      variant: 'bin/sparkler with SPARKLER_NO_BUNDLE=1: the modules loaded from dist/ one by one, as before the bundle shipped; 1 idle VM',
    }));
  }
  return entries;
}
