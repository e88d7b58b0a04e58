/**
 * The host file behind a drive. File system calls go through FileOps so tests can make them
 * fail or finish in any order; engine.ts does the I/O.
 */
import * as fs from 'node:fs';
import { SparklerError } from '../../../errors';
import { SECTOR_SHIFT } from './constants';

export type IoCallback = (err: NodeJS.ErrnoException | null, bytes: number) => void;

/** The subset of node:fs a disk uses (positional vectored I/O on an fd). */
export interface FileOps {
  openSync(path: string, flags: number): number;
  fstatSync(fd: number): { size: number; isFile(): boolean; isBlockDevice(): boolean };
  closeSync(fd: number): void;
  readvSync(fd: number, buffers: Buffer[], position: number): number;
  writevSync(fd: number, buffers: Buffer[], position: number): number;
  fdatasyncSync(fd: number): void;
  readv(fd: number, buffers: Buffer[], position: number, cb: IoCallback): void;
  writev(fd: number, buffers: Buffer[], position: number, cb: IoCallback): void;
  fdatasync(fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void;
}

export const nodeFileOps: FileOps = {
  openSync: (p, flags) => fs.openSync(p, flags),
  fstatSync: (fd) => fs.fstatSync(fd),
  closeSync: (fd) => fs.closeSync(fd),
  readvSync: (fd, b, pos) => fs.readvSync(fd, b, pos),
  writevSync: (fd, b, pos) => fs.writevSync(fd, b, pos),
  fdatasyncSync: (fd) => fs.fdatasyncSync(fd),
  readv: (fd, b, pos, cb) => fs.readv(fd, b, pos, (err, n) => cb(err, n)),
  writev: (fd, b, pos, cb) => fs.writev(fd, b, pos, (err, n) => cb(err, n)),
  fdatasync: (fd, cb) => fs.fdatasync(fd, cb),
};

export class DriveFileError extends SparklerError {
  constructor(message: string, cause?: unknown) {
    super('EDRIVEFILE', message, { cause });
    this.name = 'DriveFileError';
  }
}

/**
 * An open backing file. In-flight Async requests hold it (acquire/release), so a PATCH that
 * swaps the file closes the old fd only once nothing uses it: closing earlier could let a new
 * open reuse the number and send the old requests' data into an unrelated file.
 */
export class DiskFile {
  private users = 0;
  private closing = false;

  private constructor(readonly path: string, readonly fd: number, readonly sizeBytes: number, private readonly ops: FileOps) {}

  static open(path: string, readOnly: boolean, ops: FileOps = nodeFileOps): DiskFile {
    let fd: number;
    try {
      fd = ops.openSync(path, readOnly ? fs.constants.O_RDONLY : fs.constants.O_RDWR);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'it does not exist' : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
        : code === 'EROFS' ? 'it is on a read-only file system (set is_read_only)' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
      throw new DriveFileError(`Cannot open the drive's backing file ${path}: ${why}.`, err);
    }
    try {
      const st = ops.fstatSync(fd);
      if (!st.isFile() && !st.isBlockDevice()) throw new DriveFileError(`The drive's backing file ${path} is neither a regular file nor a block device.`);
      // Block devices report size 0 through fstat; we support regular files only for now.
      if (st.isBlockDevice()) throw new DriveFileError(`The drive's backing file ${path} is a block device; only regular files are supported.`);
      return new DiskFile(path, fd, st.size, ops);
    } catch (err) {
      ops.closeSync(fd);
      if (err instanceof DriveFileError) throw err;
      throw new DriveFileError(`Cannot read the size of the drive's backing file ${path}: ${(err as Error).message}.`, err);
    }
  }

  /** Whole 512-byte sectors (spec 5.2.4): a partial last sector is not reachable. */
  get capacity(): bigint {
    return BigInt(this.sizeBytes) >> BigInt(SECTOR_SHIFT);
  }

  acquire(): void { this.users++; }

  release(): void {
    this.users--;
    if (this.closing && this.users === 0) this.doClose();
  }

  /** Closes now, or when the last in-flight request releases it. */
  close(): void {
    if (this.closing) return;
    this.closing = true;
    if (this.users === 0) this.doClose();
  }

  private doClose(): void {
    try {
      this.ops.closeSync(this.fd);
    } catch {
      /* closing a file we are done with cannot usefully fail */
    }
  }
}
