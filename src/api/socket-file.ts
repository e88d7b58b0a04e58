/**
 * Getting the API socket path ready to bind. A socket file left by a process that died is
 * removed; one that a live process still serves is not (two VMMs on one socket would answer
 * each other's clients), and neither is anything that is not a socket.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { osErrorText } from '../config/os-error';
import { SparklerError } from '../errors';

export class ApiSocketError extends SparklerError {
  constructor(message: string, cause?: unknown) {
    super('EAPISOCKET', message, { cause });
    this.name = 'ApiSocketError';
  }
}

function isServed(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(path);
    probe.once('connect', () => { probe.destroy(); resolve(true); });
    probe.once('error', () => resolve(false));
  });
}

export async function prepareSocketPath(path: string): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new ApiSocketError(`Failed to open the API socket at: ${path}. ${osErrorText(err)}.`, err);
  }
  if (!stat.isSocket()) {
    throw new ApiSocketError(`Failed to open the API socket at: ${path}. Check that it is not already used: a file that is not a socket is in the way; remove it or choose another --api-sock.`);
  }
  if (await isServed(path)) {
    throw new ApiSocketError(`Failed to open the API socket at: ${path}. Check that it is not already used: another process is serving it; stop that process or choose another --api-sock.`);
  }
  try {
    fs.unlinkSync(path);
  } catch (err) {
    throw new ApiSocketError(`Failed to remove the stale API socket at ${path}: ${(err as Error).message}.`, err);
  }
}
