/**
 * The two ways a drive does its I/O:
 * - Sync: preadv/pwritev/fdatasync on the main thread. Simple and fast for a page-cached file,
 *   but a slow disk stalls the whole VMM loop (every device, the API) for that long.
 * - Async: the same calls queued to libuv's thread pool (fs.readv/writev/fdatasync with a
 *   callback). The loop stays free; requests run in parallel and complete in any order.
 * Both continue partial transfers and call `done` exactly once.
 */
import { DiskFile, FileOps, IoCallback, nodeFileOps } from './disk';

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
