/**
 * A warm pool's folder. A VMM's API socket moves through it by rename(2), which is atomic, so a
 * socket is in exactly one place and one client alone can take it:
 *   starting/<id>.sock   the VMM is coming up (its API does not answer yet)
 *   idle/<id>.sock       it answers GET /: ready to be claimed
 *   claimed/<id>.sock    a client took it (the claim is the rename out of idle/)
 * A Unix socket keeps working under its new name: the VMM listens on the inode, not the path.
 *   pids/<id>.pid        the VMM's process id, written by the pool when it starts the VMM, so the
 *                        client that claims it can end it (it is the pool's child, not the client's)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const STATES = ['starting', 'idle', 'claimed'] as const;
export type SlotState = (typeof STATES)[number];

export function slotPath(dir: string, state: SlotState, id: string): string {
  return path.join(dir, state, `${id}.sock`);
}

export function pidPath(dir: string, id: string): string {
  return path.join(dir, 'pids', `${id}.pid`);
}

/** Creates the folders (0700: only the pool's user may claim). */
export function preparePoolDir(dir: string): void {
  for (const sub of [...STATES, 'pids']) fs.mkdirSync(path.join(dir, sub), { recursive: true, mode: 0o700 });
}

/** The ids in one state, oldest first by name (ids sort by creation). */
export function listSlots(dir: string, state: SlotState): string[] {
  try {
    return fs.readdirSync(path.join(dir, state)).filter((n) => n.endsWith('.sock')).map((n) => n.slice(0, -5)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
