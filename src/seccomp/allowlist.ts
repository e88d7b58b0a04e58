/**
 * The default filter for the running Node: its major version's allow-list, compiled. A Node
 * major without a list is refused (start with --no-seccomp or a --seccomp-filter), since a
 * missing entry would kill the VMM in production instead of failing a test.
 */
import { FilterSpec, SeccompAction, SeccompError, SyscallRule } from './bpf';
import { AllowEntry, NODE20_ALLOWLIST } from './allowlist-node20';
import { X86_64_SYSCALLS } from './syscalls-x86_64';

export const ALLOWLISTS: Readonly<Record<number, readonly AllowEntry[]>> = { 20: NODE20_ALLOWLIST };

export { nodeMajor } from './compiled-filter';

export function allowlistFor(major: number): readonly AllowEntry[] {
  const list = ALLOWLISTS[major];
  if (!list) {
    throw new SeccompError(`There is no seccomp allow-list for Node ${major} (lists exist for Node ${Object.keys(ALLOWLISTS).join(', ')}); run with --no-seccomp or --seccomp-filter FILE.`);
  }
  return list;
}

/** The allow-list as a filter; a denied call traps (SIGSYS), as Firecracker's default. */
export function defaultFilter(list: readonly AllowEntry[], defaultAction: SeccompAction = { kind: 'trap' }): FilterSpec {
  const syscalls: SyscallRule[] = list.map((e) => {
    const nr = X86_64_SYSCALLS[e.syscall];
    if (nr === undefined) throw new SeccompError(`The allow-list names ${e.syscall}, which is not an x86_64 system call.`);
    return { nr, rules: e.when ?? [] };
  });
  return { defaultAction, matchAction: { kind: 'allow' }, syscalls };
}
