/**
 * Loads a filter on every thread of the VMM: no_new_privs first (the kernel requires it of an
 * unprivileged process), then seccomp(SET_MODE_FILTER, TSYNC), which puts the filter on all the
 * threads that exist (Node's V8 and libuv threads included); threads created later inherit it.
 * A trapped call raises SIGSYS, which the native handler turns into a log line and exit 148.
 */
import { IsolationShim } from '../native';
import { SeccompError } from './bpf';

const PR_SET_NO_NEW_PRIVS = 38;
const SECCOMP_FILTER_FLAG_TSYNC = 1;
/** Firecracker's exit codes: a bad system call, and a SIGSYS that a filter did not raise. */
export const EXIT_BAD_SYSCALL = 148;
export const EXIT_UNEXPECTED = 2;

/** Loads `program` (struct sock_filter bytes: bpf.ts encodeProgram); the number of instructions. */
export function installFilter(sys: Pick<IsolationShim, 'prctl' | 'seccompSetFilter' | 'installSigsysHandler'>, program: Uint8Array, logFd: number): number {
  const h = sys.installSigsysHandler(logFd, EXIT_BAD_SYSCALL, EXIT_UNEXPECTED);
  if (h < 0) throw new SeccompError(`Could not install the SIGSYS handler (errno ${-h}).`);
  const p = sys.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  if (p < 0) throw new SeccompError(`Could not set no_new_privs (errno ${-p}).`);
  const r = sys.seccompSetFilter(SECCOMP_FILTER_FLAG_TSYNC, program);
  if (r < 0) throw new SeccompError(`Could not load the seccomp filter (errno ${-r}).`);
  // A positive result is a thread that could not be synchronised: the filter is not everywhere.
  if (r > 0) throw new SeccompError(`Could not put the seccomp filter on thread ${r}: it already has an incompatible filter.`);
  return program.length / 8;
}
