/** What every suite gets: the mode, the binaries, a scratch directory, progress and problem reporting. */
import * as path from 'node:path';

export interface BenchContext {
  quick: boolean;
  /** bin/sparkler, absolute. */
  bin: string;
  /** qemu-system-x86_64, or undefined when it is not installed (QEMU columns are then null). */
  qemu?: string;
  /** Scratch directory for configs and guest images (removed at the end). */
  work: string;
  /** Where local measurements run, in words ("this machine's /dev/kvm (PVM)"). */
  localKvm: string;
  progress(line: string): void;
  /** Things that went wrong but did not stop the suite; listed in the report. */
  problems: string[];
  /** --boot-configs: the boot configurations to run ('off-1', 'on-2', ...: console, vCPUs); all when absent. */
  bootConfigs?: string[];
  /** Experiments measured beside bin/sparkler (empty when they could not be prepared). */
  experiments: SparklerVariant[];
}

/** The repository root (dist/bench -> ../..). */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** Boot-timer line of Sparkler's log: wall and CPU microseconds since process start. */
export const SPARKLER_MARK_LINE = /Guest-boot-time = +(\d+) us \d+ ms, +(\d+) CPU us/;

/** One way of starting Sparkler: bin/sparkler as shipped (bundled, code cache), or a comparison. */
export interface SparklerVariant {
  name: 'sparkler' | 'unbundled' | 'with-extra-ca-certs';
  command: string;
  args: string[];
  env: Record<string, string>;
}

export function plainVariant(bin: string): SparklerVariant {
  return { name: 'sparkler', command: bin, args: [], env: {} };
}
