/**
 * What kind of KVM this host offers. PVM (kvm_pvm) implements KVM's ABI without hardware
 * virtualisation: tiny guests run, but a kernel that is not PVM-enlightened runs its ring-0
 * code through KVM's instruction emulator and crawls (DESIGN.md section 4).
 */
import * as fs from 'node:fs';

export type KvmHostKind = 'hardware' | 'pvm' | 'none';

export interface KvmHostInfo {
  kind: KvmHostKind;
  /** One sentence for people. */
  summary: string;
  module?: string;
}

export function detectKvmHost(root = '/'): KvmHostInfo {
  const at = (p: string) => fs.existsSync(`${root}${p}`);
  if (!at('dev/kvm')) return { kind: 'none', summary: 'No /dev/kvm: this host has no KVM (load kvm_intel or kvm_amd, or enable virtualisation).' };
  if (at('sys/module/kvm_pvm')) {
    return { kind: 'pvm', module: 'kvm_pvm', summary: 'KVM is PVM (kvm_pvm, no hardware virtualisation): tiny guests run, a stock Linux kernel runs under instruction emulation and is far too slow.' };
  }
  for (const module of ['kvm_intel', 'kvm_amd']) {
    if (at(`sys/module/${module}`)) return { kind: 'hardware', module, summary: `KVM uses hardware virtualisation (${module}).` };
  }
  return { kind: 'hardware', summary: 'KVM is present (module not identified; assuming hardware virtualisation).' };
}

/** The explanation printed instead of a silent, endless boot of a stock kernel on PVM. */
export const PVM_STOCK_KERNEL_EXPLANATION = [
  "This host's /dev/kvm is PVM (kvm_pvm), not hardware virtualisation.",
  'A stock Linux kernel is not PVM-enlightened: its privileged code would run under KVM\'s instruction emulator,',
  'about a thousand times slower, and typically stalls or hits instructions the emulator cannot handle.',
  'Run it inside the emulated KVM host instead:  bin/sparkler emuhost -- bin/sparkler <same arguments>',
  'or set SPARKLER_ALLOW_PVM_STOCK_KERNEL=1 to try anyway.',
].join('\n');
