/**
 * Every error the VMM raises on purpose is a SparklerError: a stable `code` for programs,
 * a message that reads as a sentence for people, and the underlying error (errno) as `cause`.
 */
export class SparklerError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SparklerError';
    this.code = code;
  }
}

/** An errno returned by a syscall, as the native shim reports it (a negative return value). */
export class SyscallError extends SparklerError {
  readonly errno: number;
  constructor(what: string, errno: number) {
    super('ESYSCALL', `${what} failed: ${errnoName(errno)} (errno ${errno}).`);
    this.name = 'SyscallError';
    this.errno = errno;
  }
}

const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 4: 'EINTR', 5: 'EIO', 9: 'EBADF', 11: 'EAGAIN', 12: 'ENOMEM',
  13: 'EACCES', 14: 'EFAULT', 16: 'EBUSY', 17: 'EEXIST', 19: 'ENODEV', 22: 'EINVAL',
  24: 'EMFILE', 25: 'ENOTTY', 28: 'ENOSPC', 38: 'ENOSYS', 95: 'EOPNOTSUPP',
};

export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}
