/**
 * An errno the way Firecracker (Rust's io::Error) prints it: `No such file or directory (os error 2)`.
 * Clients written for Firecracker match these phrases in fault messages.
 */
// node:os is loaded when an error is described, not on the way to the API socket (it costs ~0.2 ms).
const errnos = (): Record<string, number> => (require('node:os') as typeof import('node:os')).constants.errno as Record<string, number>;

const TEXT: Record<string, string> = {
  EPERM: 'Operation not permitted', ENOENT: 'No such file or directory', EIO: 'Input/output error', ENXIO: 'No such device or address',
  EBADF: 'Bad file descriptor', EAGAIN: 'Resource temporarily unavailable', ENOMEM: 'Cannot allocate memory', EACCES: 'Permission denied',
  EFAULT: 'Bad address', EBUSY: 'Device or resource busy', EEXIST: 'File exists', ENODEV: 'No such device', ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory', EINVAL: 'Invalid argument', ENFILE: 'Too many open files in system', EMFILE: 'Too many open files',
  ETXTBSY: 'Text file busy', EFBIG: 'File too large', ENOSPC: 'No space left on device', EROFS: 'Read-only file system',
  ENAMETOOLONG: 'File name too long', ELOOP: 'Too many levels of symbolic links', ECONNREFUSED: 'Connection refused',
};

/** `<strerror> (os error <n>)` for a Node system error; other errors keep their own message. */
export function osErrorText(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const errno = code !== undefined ? errnos()[code] : undefined;
  if (code !== undefined && errno !== undefined) return `${TEXT[code] ?? code} (os error ${errno})`;
  return err instanceof Error ? err.message : String(err);
}
