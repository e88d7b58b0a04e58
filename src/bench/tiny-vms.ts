/**
 * Starting one tiny-guest VM under either VMM on this machine's /dev/kvm and waiting for the
 * guest's first mark (its write at 0xC000_0000), for the memory, start-up and creation suites.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Socket } from 'node:net';
import { BenchContext, plainVariant, SPARKLER_MARK_LINE, SparklerVariant } from './context';
import { firstLine, openFifo, processCpuNs, Spawned, spawnSparkler, spawnTimed, watchLines, withTimeout } from './proc';
import { microvmArgs, QEMU_INIT_LINE, QemuVm } from './qemu';

export const TINY_MEM_MIB = 128;
const MARK_TIMEOUT_MS = 60_000;

let counter = 0;
const unique = (prefix: string): string => `${prefix}-${process.pid}-${counter++}`;

/** Writes a guest image into the work directory once; returns its path. */
export function guestFile(ctx: BenchContext, name: string, image: Buffer): string {
  const file = path.join(ctx.work, name);
  if (!fs.existsSync(file)) fs.writeFileSync(file, image);
  return file;
}

/** A --config-file for a tiny guest. */
export function sparklerConfig(ctx: BenchContext, kernel: string, vcpus = 1): string {
  const file = path.join(ctx.work, `${path.basename(kernel)}-${vcpus}.json`);
  if (!fs.existsSync(file)) {
    fs.writeFileSync(file, JSON.stringify({
      'boot-source': { kernel_image_path: kernel, boot_args: 'reboot=k' },
      'machine-config': { vcpu_count: vcpus, mem_size_mib: TINY_MEM_MIB },
    }));
  }
  return file;
}

export interface Started {
  p: Spawned;
  /** Arrival of the guest's mark, performance.now(). */
  markAt: number;
  /** The FIFO QEMU logs into (destroy when done). */
  fifo?: Socket;
  /** CPU time the VMM had used when the guest marked, ms (Sparkler's boot timer). */
  cpuMs?: number;
}

/** Sparkler with --no-api --boot-timer --config-file, up to the guest's mark. */
export async function startSparkler(ctx: BenchContext, config: string, variant: SparklerVariant = plainVariant(ctx.bin)): Promise<Started> {
  const p = spawnSparkler(variant, ['--no-api', '--boot-timer', '--config-file', config]);
  try {
    const { at, match } = await withTimeout(firstLine(p, p.child.stdout, SPARKLER_MARK_LINE), MARK_TIMEOUT_MS, 'Sparkler tiny guest');
    return { p, markAt: at, cpuMs: Number(match[2]) / 1000 };
  } catch (err) {
    p.child.kill('SIGKILL');
    throw err;
  }
}

/** QEMU microvm with a PVH tiny guest, up to the guest's mark (seen in the guest_errors log). */
export async function startQemu(ctx: BenchContext, vm: Omit<QemuVm, 'log'>): Promise<Started> {
  const log = path.join(ctx.work, `${unique('qemu')}.log`);
  const fifo = openFifo(log);
  const p = spawnTimed(ctx.qemu!, microvmArgs({ ...vm, log }));
  watchLines(p.child.stdout, () => undefined);
  try {
    const { at } = await withTimeout(firstLine(p, fifo, QEMU_INIT_LINE), MARK_TIMEOUT_MS, 'QEMU tiny guest');
    return { p, markAt: at, fifo, cpuMs: processCpuNs(p.child.pid!) / 1e6 };
  } catch (err) {
    p.child.kill('SIGKILL');
    fifo.destroy();
    throw err;
  } finally {
    fs.rmSync(log, { force: true });
  }
}
