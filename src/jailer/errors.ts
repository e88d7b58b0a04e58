import { SparklerError } from '../errors';

/**
 * A jailer failure: its message is what the jailer prints on stderr before it exits with
 * status 1 (Firecracker's jailer phrases where its tests match them, behaviours.md section 10).
 */
export class JailerError extends SparklerError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'JailerError';
  }
}

const OS_ERRORS: Record<number, string> = {
  1: 'Operation not permitted', 2: 'No such file or directory', 13: 'Permission denied',
  16: 'Resource busy', 17: 'File exists', 20: 'Not a directory', 21: 'Is a directory',
  22: 'Invalid argument', 24: 'No file descriptors available', 28: 'No space left on device',
  38: 'Function not implemented', 40: 'Too many levels of symbolic links', 95: 'Operation not supported',
};

/** Rust's io::Error text, which Firecracker's messages embed: "No such file or directory (os error 2)". */
export function osError(errno: number): string {
  const n = Math.abs(errno);
  return `${OS_ERRORS[n] ?? `Unknown error ${n}`} (os error ${n})`;
}

/** The errno of a Node fs error (err.errno is negative in Node), or EIO when it has none. */
export function errnoOf(err: unknown): number {
  const e = (err as NodeJS.ErrnoException | undefined)?.errno;
  return typeof e === 'number' ? Math.abs(e) : 5;
}

/** Turns a native -errno into a JailerError naming the step; a non-negative result passes. */
export function check(result: number, code: string, what: string): number {
  if (result < 0) throw new JailerError(code, `${what}: ${osError(result)}`);
  return result;
}
