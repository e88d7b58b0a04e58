/**
 * bin/sparkler-jailer: builds the jail and starts the VMM in it, in Firecracker's order
 * (docs/jailer.md): layout -> cgroups -> rlimits -> netns -> mount (and pid) namespace ->
 * pivot_root -> no_new_privs -> uid/gid -> exec. Without --new-pid-ns and --daemonize the
 * jailer execs the VMM in place (same pid); with either it forks the VMM (pid 1 of the new pid
 * namespace, or a new session with stdio on /dev/null), writes the pid file and exits 0.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IsolationShim } from '../native';
import { JailerArgs } from './args';
import { applyCgroups, numaCpuset, parseCgroupMounts } from './cgroups';
import { JailerError, osError } from './errors';
import { closeOnExec, dropCredentials, joinNetns, noNewPrivileges, pivotInto, setLimits, unshareNamespaces } from './isolate';
import { DEVICE_NODES, Undo, buildLayout, canonicalExecFile, hostUserfaultfd, writePidFile } from './layout';
import { runtimeMounts } from './runtime';

export interface JailerClock {
  /** CLOCK_MONOTONIC in µs when the jailer started. */
  startUs: number;
  /** The jailer's CPU time in µs when it started. */
  startCpuUs: number;
}

/** The VMM's command line: its path in the jail, the jailer's flags, then the user's. */
export function vmmArgv(execInJail: string, id: string, clock: JailerClock, parentCpuUs: number, extra: readonly string[]): string[] {
  return [
    execInJail,
    '--id', id,
    '--start-time-us', `${clock.startUs}`,
    '--start-time-cpu-us', `${clock.startCpuUs}`,
    '--parent-cpu-time-us', `${parentCpuUs}`,
    ...extra,
  ];
}

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/**
 * Runs the jail. Returns the exit status for the jailer when it forked the VMM (0); when it
 * execs in place it does not return.
 */
export async function runJail(args: JailerArgs, sys: IsolationShim, clock: JailerClock, warn: (m: string) => void): Promise<number> {
  const execFile = canonicalExecFile(args.execFile);
  const mounts = runtimeMounts(execFile);
  const nodes = [...DEVICE_NODES];
  const uffd = hostUserfaultfd();
  if (uffd) nodes.push(uffd);
  const cgroups = [...args.cgroups, ...(args.numaNode !== undefined ? numaCpuset(args.numaNode) : [])];

  const undo = new Undo();
  let layout;
  let devNull: number | undefined;
  try {
    layout = buildLayout(sys, { base: args.chrootBaseDir, id: args.id, execFile, uid: args.uid, gid: args.gid, mounts, nodes, warn }, undo);
    if (cgroups.length > 0 || args.parentCgroupGiven) {
      const plan = { version: args.cgroupVersion, id: args.id, parent: args.parentCgroup, parentGiven: args.parentCgroupGiven, settings: cgroups };
      applyCgroups(plan, parseCgroupMounts(fs.readFileSync('/proc/mounts', 'utf8')), process.pid, undo);
    }
    setLimits(sys, args.noFile, args.fsize);
    if (args.netns !== undefined) joinNetns(sys, args.netns);
    if (args.daemonize) devNull = fs.openSync('/dev/null', 'r+');
    unshareNamespaces(sys, args.newPidNs);
    pivotInto(sys, layout.root, mounts);
  } catch (err) {
    // Before pivot_root every created path is still reachable from here.
    undo.run();
    throw err;
  }

  const pidFile = `/${path.basename(execFile)}.pid`;
  closeOnExec(sys);
  noNewPrivileges(sys);
  if (!args.daemonize && !args.newPidNs) {
    writePidFile(pidFile, process.pid);
    dropCredentials(sys, args.uid, args.gid);
    const argv = vmmArgv(layout.execInJail, args.id, clock, 0, args.vmmArgs);
    const r = sys.execve(layout.execInJail, argv, []);
    throw new JailerError('EJAILEXEC', `Failed to exec ${layout.execInJail}: ${osError(r)}`);
  }

  // Forked: libuv's child drops the groups and sets gid then uid before it execs; it inherits
  // this thread's root, namespaces, no_new_privs, rlimits and cgroups.
  const argv = vmmArgv(layout.execInJail, args.id, clock, cpuUs(), args.vmmArgs);
  const stdio = devNull !== undefined ? [devNull, devNull, devNull] : 'inherit';
  const child = spawn(argv[0], argv.slice(1), { argv0: argv[0], cwd: '/', env: {}, uid: args.uid, gid: args.gid, detached: args.daemonize, stdio });
  const pid = await new Promise<number>((resolve, reject) => {
    child.once('spawn', () => resolve(child.pid!));
    child.once('error', (err) => reject(new JailerError('EJAILEXEC', `Failed to start ${argv[0]}: ${err.message}`)));
  });
  writePidFile(pidFile, pid);
  child.unref();
  return 0;
}
