import { SyscallError } from '../errors';
import type { NativeShim } from '../native';

const EINTR = 4;

/**
 * How many times an ioctl interrupted by a signal is retried before its -EINTR is reported.
 * A signal (SIGPROF under `node --cpu-prof`, SIGCHLD, ...) can interrupt any blocking ioctl, e.g.
 * KVM_CREATE_VM; one interruption per attempt would need a signal storm to exhaust this.
 */
export const EINTR_RETRIES = 64;

/** Turns the shim's -errno convention into a thrown SyscallError naming the operation. */
export function check(result: number, what: string): number {
  if (result < 0) throw new SyscallError(what, -result);
  return result;
}

/**
 * The one place src/kvm calls the native ioctl: retries while the call returns -EINTR (at most
 * EINTR_RETRIES times), then returns the result (or -errno) as the shim does. Not used for
 * KVM_RUN, which the native vCPU threads drive and whose EINTR means "kicked".
 */
export function ioctl(shim: NativeShim, fd: number, request: number, arg: number | bigint | Uint8Array): number {
  let result = shim.ioctl(fd, request, arg);
  for (let retries = 0; result === -EINTR && retries < EINTR_RETRIES; retries++) {
    result = shim.ioctl(fd, request, arg);
  }
  return result;
}
