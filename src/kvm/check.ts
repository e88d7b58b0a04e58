import { SyscallError } from '../errors';

/** Turns the shim's -errno convention into a thrown SyscallError naming the operation. */
export function check(result: number, what: string): number {
  if (result < 0) throw new SyscallError(what, -result);
  return result;
}
