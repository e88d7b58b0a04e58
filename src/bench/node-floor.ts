/**
 * Node's own start-up floor, measured in the same rounds as Sparkler's start-up (startup.ts):
 * `node -e 0` from spawn() to exit, and an empty `http` server listening on a Unix socket from
 * spawn() to the socket accepting (with the CPU time used by then). Sparkler's API socket cannot
 * accept before Node itself can, so its distance from this floor is what its own code costs.
 */
import * as path from 'node:path';
import { BenchContext } from './context';
import { killAndWait, now, processCpuNs, spawnTimed, vmmEnv, waitForSocket } from './proc';

const TIMEOUT = 30_000;
const EMPTY_SERVER = "require('node:http').createServer((q, r) => r.end()).listen(process.argv[1])";

export interface NodeFloorSample {
  /** spawn() -> exit of `node -e 0`, ms. */
  exitMs: number;
  /** spawn() -> the empty server's socket accepts, ms. */
  acceptMs: number;
  /** CPU ms of the empty server's process when its socket first accepted. */
  acceptCpuMs: number;
}

export async function nodeFloor(ctx: BenchContext, run: number): Promise<NodeFloorSample> {
  const bare = spawnTimed(process.execPath, ['-e', '0'], { env: vmmEnv() });
  const code = await bare.exited;
  const exitMs = now() - bare.startedAt;
  if (code !== 0) throw new Error(`node -e 0 exited with ${code}`);
  const sock = path.join(ctx.work, `node-floor-${run}.sock`);
  const server = spawnTimed(process.execPath, ['-e', EMPTY_SERVER, sock], { env: vmmEnv() });
  try {
    const accepted = await waitForSocket(sock, server, TIMEOUT, 0.5);
    const acceptCpuMs = processCpuNs(server.child.pid!) / 1e6;
    return { exitMs, acceptMs: accepted - server.startedAt, acceptCpuMs };
  } finally {
    await killAndWait(server);
  }
}
