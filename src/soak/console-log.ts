/**
 * A soak VM's console and VMM log: every chunk appended to a file in the VM's work dir, the last
 * few KiB kept in memory, so a VM that ends unexpectedly can say why in the report (the guest's
 * panic or stall report, and Sparkler's stop line "Vmm is stopping (guest KIND).").
 */
import * as fs from 'node:fs';

const TAIL_BYTES = 8192;

/**
 * What a console tail says about why the guest ended; the first rule that matches wins. The
 * watchdog kinds (soft lockup, RCU stall, hung task) fire when the guest's vCPU got too little
 * host time, which an overloaded emulated (TCG) host causes: `hostSlowness` marks them.
 */
const CAUSES: [RegExp, string, boolean][] = [
  // CPUID 0xD's size for the enabled XSAVE features disagreeing with its features: the (emulated) host KVM's CPUID.
  [/XSAVE consistency problem[^\n]*/, 'guest saw inconsistent XSAVE sizes in CPUID 0xD (from the host KVM), then ended', false],
  [/Attempted to kill init/, 'guest init exited (kernel panic: attempted to kill init)', false],
  [/soft lockup/, 'guest soft lockup (watchdog), then a panic', true],
  [/rcu_\w+ (self-)?detected stall|rcu: INFO: .*stall/, 'guest RCU stall', true],
  [/blocked for more than \d+ seconds/, 'guest hung task', true],
  [/Kernel panic - not syncing: ([^\n]*)/, 'guest kernel panic', false],
  [/Oops|BUG: /, 'guest kernel oops', false],
  [/reboot: (Restarting system|Power down)/, 'guest asked to reboot or power off', false],
  // Last: a triple fault with none of the above before it (kvm-amd re-initialises the vCPU at a
  // shutdown, so the registers Sparkler logs then are the reset values, not the faulting state).
  [/shut down \(triple fault\)/, 'guest triple fault with no kernel message before it', false],
];

export interface ExitExplanation {
  /** Sparkler's own stop line, e.g. "Vmm is stopping (guest reset)."; absent if it wrote none. */
  stopReason?: string;
  /** The guest's reason read from the console, or 'unknown' if the tail names none. */
  cause: string;
  /** The guest console line that named it (the panic message, the stall report). */
  evidence?: string;
  /** A guest watchdog that a starved vCPU sets off (the host's slowness, not the VMM's fault). */
  hostSlowness?: boolean;
}

export function explainExit(tail: string): ExitExplanation {
  const stop = /[^\n]*Vmm is stopping \(guest [^)]*\)\.|[^\n]*The microVM stopped on an error[^\n]*|[^\n]*shut down \(triple fault\)[^\n]*/.exec(tail);
  for (const [re, cause, hostSlowness] of CAUSES) {
    const m = re.exec(tail);
    if (m) {
      const line = tail.slice(tail.lastIndexOf('\n', m.index) + 1).split('\n')[0].trim();
      return { stopReason: stop?.[0].trim(), cause, evidence: line.slice(0, 300), ...(hostSlowness ? { hostSlowness } : {}) };
    }
  }
  return { stopReason: stop?.[0].trim(), cause: 'unknown' };
}

export class ConsoleLog {
  private readonly fd: number;
  private recent = '';

  constructor(readonly file: string) {
    this.fd = fs.openSync(file, 'a');
  }

  write = (chunk: Buffer | string): void => {
    fs.writeSync(this.fd, typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    this.recent = (this.recent + chunk.toString()).slice(-TAIL_BYTES);
  };

  /** A marker between processes (the restored VM's new process writes to the same log). */
  mark(text: string): void {
    this.write(`\n--- ${text} ---\n`);
  }

  tail(chars = 2000): string {
    return this.recent.slice(-chars);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
