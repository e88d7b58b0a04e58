/**
 * The host file behind a drive, and the two ways of doing its I/O:
 * - Sync: preadv/pwritev/fdatasync on the main thread. Simple and fast for a page-cached file,
 *   but a slow disk stalls the whole VMM loop (every device, the API) for that long.
 * - Async: the same calls queued to libuv's thread pool (fs.readv/writev/fdatasync with a
 *   callback). The loop stays free; requests run in parallel and complete in any order.
 * The file system calls go through FileOps so tests can make them fail or finish out of order.
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

/** How a drive's requests reach its file; `done` runs once per call, with bytes moved on success. */
export interface IoEngine {
  readonly kind: 'Sync' | 'Async';
  read(disk: DiskFile, buffers: Buffer[], offset: number, done: (err: Error | null) => void): void;
  write(disk: DiskFile, buffers: Buffer[], offset: number, done: (err: Error | null) => void): void;
  flush(disk: DiskFile, done: (err: Error | null) => void): void;
}

/** A read that hit the end of the file (it shrank under us): the data is not there. */
function shortTransfer(op: string, offset: number): Error {
  return Object.assign(new Error(`${op} at byte ${offset} reached the end of the file`), { code: 'ESHORT' });
}

/** `buffers` without their first `n` bytes (a partial preadv/pwritev is continued from there). */
export function advance(buffers: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (i < buffers.length && n >= buffers[i].length) n -= buffers[i++].length;
  const rest = buffers.slice(i);
  if (rest.length > 0 && n > 0) rest[0] = rest[0].subarray(n);
  return rest;
}

const total = (buffers: Buffer[]): number => buffers.reduce((s, b) => s + b.length, 0);

export class SyncEngine implements IoEngine {
  readonly kind = 'Sync';
  constructor(private readonly ops: FileOps = nodeFileOps) {}

  read(disk: DiskFile, buffers: Buffer[], offset: number, done: (err: Error | null) => void): void {
    done(this.loop('read', (b, pos) => this.ops.readvSync(disk.fd, b, pos), buffers, offset));
  }

  write(disk: DiskFile, buffers: Buffer[], offset: number, done: (err: Error | null) => void): void {
    done(this.loop('write', (b, pos) => this.ops.writevSync(disk.fd, b, pos), buffers, offset));
  }

  flush(disk: DiskFile, done: (err: Error | null) => void): void {
    try {
      this.ops.fdatasyncSync(disk.fd);
      done(null);
    } catch (err) {
      done(err as Error);
    }
  }

  private loop(op: string, io: (b: Buffer[], pos: number) => number, buffers: Buffer[], offset: number): Error | null {
    try {
      for (let left = total(buffers), pos = offset; left > 0;) {
        const n = io(buffers, pos);
        if (n <= 0) return shortTransfer(op, pos);
        buffers = advance(buffers, n);
        left -= n;
        pos += n;
      }
      return null;
    } catch (err) {
      return err as Error;
    }
  }
}

export class AsyncEngine implements IoEngine {
  readonly kind = 'Async';
  constructor(private readonly ops: FileOps = nodeFileOps) {}

  read(disk: DiskFile, buffers: Buffer[], offset: number, done: (err: Error | null) => void): void {
    this.loop('read', (b, pos, cb) => this.ops.readv(disk.fd, b, pos, cb), disk, buffers, offset, done);
  }

  write(disk: DiskFile, buffers: Buffer[], offset: number, done: (err: Error | null) => void): void {
    this.loop('write', (b, pos, cb) => this.ops.writev(disk.fd, b, pos, cb), disk, buffers, offset, done);
  }

  flush(disk: DiskFile, done: (err: Error | null) => void): void {
    disk.acquire();
    try {
      this.ops.fdatasync(disk.fd, (err) => {
        disk.release();
        done(err);
      });
    } catch (err) {
      disk.release();
      done(err as Error);
    }
  }

  private loop(op: string, io: (b: Buffer[], pos: number, cb: IoCallback) => void, disk: DiskFile, buffers: Buffer[], offset: number, done: (err: Error | null) => void): void {
    disk.acquire();
    const finish = (err: Error | null) => {
      disk.release();
      done(err);
    };
    const step = (bufs: Buffer[], pos: number) => {
      if (total(bufs) === 0) return finish(null);
      try {
        io(bufs, pos, (err, n) => {
          if (err) return finish(err);
          if (n <= 0) return finish(shortTransfer(op, pos));
          step(advance(bufs, n), pos + n);
        });
      } catch (err) {
        finish(err as Error); // fs refused the call itself (a closed fd, bad arguments)
      }
    };
    step(buffers, offset);
  }
}
