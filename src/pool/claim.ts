/**
 * Taking a VMM from a warm pool: rename one socket from idle/ to claimed/. rename(2) is atomic,
 * so of several clients racing for the same socket exactly one succeeds; the others see ENOENT
 * and try the next. The claimed socket then speaks the plain Firecracker API. No pool process
 * takes part: a client needs only the folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SparklerError } from '../errors';
import { listSlots, pidPath, slotPath } from './layout';

export class PoolEmptyError extends SparklerError {
  constructor(dir: string) {
    super('EPOOLEMPTY', `The warm pool at ${dir} has no idle VMM to claim; start one with \`sparkler pool --dir ${dir} --size N\` or wait for it to refill.`);
    this.name = 'PoolEmptyError';
  }
}

export interface ClaimedVmm {
  id: string;
  /** The API socket, now under claimed/. */
  socketPath: string;
  /** The VMM's process id (the pool's child; undefined if the pool wrote no pid file). */
  pid?: number;
  /** A pre-jailed VMM's chroot (its files go there, named by their path inside it); undefined when not jailed. */
  jailRoot?: string;
}

/** Claims one idle VMM, or throws PoolEmptyError when none is idle right now. */
export function claimVmm(dir: string): ClaimedVmm {
  for (const id of listSlots(dir, 'idle')) {
    const target = slotPath(dir, 'claimed', id);
    try {
      fs.renameSync(slotPath(dir, 'idle', id), target);
      return { id, socketPath: target, pid: readPid(dir, id), jailRoot: jailRootOf(target) };
    } catch (err) {
      // Another client took it first: try the next one.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  throw new PoolEmptyError(dir);
}

/** Claims one, waiting up to `timeoutMs` for the pool to refill. */
export async function claimVmmWaiting(dir: string, timeoutMs = 5000, pollMs = 5): Promise<ClaimedVmm> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return claimVmm(dir);
    } catch (err) {
      if (!(err instanceof PoolEmptyError) || Date.now() >= deadline) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** A jailed slot is a symlink to `<chroot>/api.sock`. */
function jailRootOf(slot: string): string | undefined {
  try {
    return path.dirname(fs.readlinkSync(slot));
  } catch {
    return undefined; // a socket, not a link: not jailed
  }
}

function readPid(dir: string, id: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(pidPath(dir, id), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
