/**
 * The steps that confine the jailer's main thread before it execs (or forks) the VMM: network
 * namespace, a private mount namespace (and a pid namespace for its children), the runtime's
 * read-only bind mounts, pivot_root into the chroot, rlimits, credentials.
 *
 * Node has helper threads; every call here acts on the calling (main) thread, which is the one
 * that forks or execs: mount and pid namespaces and the root are per thread in Linux, and
 * execve ends the other threads. So after pivotInto() only synchronous fs calls see the jail
 * (the libuv pool threads still see the host): the jailer makes none but sync ones.
 */
import * as fs from 'node:fs';
import { IsolationShim } from '../native';
import { JailerError, check, errnoOf, osError } from './errors';
import { RuntimeMount } from './runtime';

export const CLONE_NEWNS = 0x00020000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;
const MS_RDONLY = 1;
const MS_NOSUID = 2;
const MS_NODEV = 4;
const MS_REMOUNT = 32;
const MS_BIND = 4096;
const MS_REC = 16384;
const MS_SLAVE = 1 << 19;
const MNT_DETACH = 2;
export const PR_SET_NO_NEW_PRIVS = 38;
export const RLIMIT_FSIZE = 1;
export const RLIMIT_NOFILE = 7;
export const CLOSE_RANGE_CLOEXEC = 1 << 2;

export type Sys = Pick<IsolationShim, 'fcntl' | 'mount' | 'umount2' | 'unshare' | 'setns' | 'pivotRoot' | 'setrlimit' | 'prctl' | 'setgroups' | 'setresgid' | 'setresuid' | 'closeRange'>;

/** Joins the network namespace at `nsPath` (a /var/run/netns file or /proc/<pid>/ns/net). */
export function joinNetns(sys: Sys, nsPath: string): void {
  let fd: number;
  try {
    fd = fs.openSync(nsPath, 'r');
  } catch (err) {
    throw new JailerError('EJAILNETNS', `Failed to open the network namespace ${nsPath}: ${osError(errnoOf(err))}`);
  }
  try {
    check(sys.setns(fd, CLONE_NEWNET), 'EJAILNETNS', `Failed to join the network namespace ${nsPath}`);
  } finally {
    fs.closeSync(fd);
  }
}

export function setLimits(sys: Sys, noFile: number, fsize: number | undefined): void {
  check(sys.setrlimit(RLIMIT_NOFILE, noFile, noFile), 'EJAILRLIMIT', `Failed to set the no-file resource limit to ${noFile}`);
  if (fsize !== undefined) check(sys.setrlimit(RLIMIT_FSIZE, fsize, fsize), 'EJAILRLIMIT', `Failed to set the fsize resource limit to ${fsize}`);
}

/** unshare the mount namespace (and the pid namespace of the children, with newPidNs). */
export function unshareNamespaces(sys: Sys, newPidNs: boolean): void {
  check(sys.unshare(CLONE_NEWNS | (newPidNs ? CLONE_NEWPID : 0)), 'EJAILNS', `Failed to unshare the ${newPidNs ? 'mount and pid namespaces' : 'mount namespace'}`);
}

/** A read-only, nosuid, nodev bind mount of source at target (MS_RDONLY needs a remount). */
function bindReadOnly(sys: Sys, source: string, target: string): void {
  check(sys.mount(source, target, null, MS_BIND, null), 'EJAILMOUNT', `Failed to bind-mount ${source} on ${target}`);
  check(sys.mount(null, target, null, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, null), 'EJAILMOUNT', `Failed to make ${target} read-only`);
}

/**
 * In the new mount namespace: stops mount events reaching the host (rslave, as Firecracker's
 * jailer: mounts the host makes under a shared chroot still reach the jail, which is how Kata
 * hot-plugs a drive: a bind mount over a placeholder, then PATCH /drives), makes root a
 * mount point, mounts the runtime under it read-only, then pivot_root into it and detaches the
 * host's tree, so nothing of it stays reachable from the jail.
 */
export function pivotInto(sys: Sys, root: string, mounts: readonly RuntimeMount[]): void {
  check(sys.mount(null, '/', null, MS_REC | MS_SLAVE, null), 'EJAILMOUNT', 'Failed to make the mounts slaves of the host\'s');
  check(sys.mount(root, root, null, MS_BIND | MS_REC, null), 'EJAILMOUNT', `Failed to bind-mount ${root} on itself`);
  for (const m of mounts) bindReadOnly(sys, m.source, `${root}${m.target}`);
  process.chdir(root);
  // pivot_root(".", "."): the old root ends up stacked under the new one and is detached at
  // once, with no directory left for it in the jail.
  check(sys.pivotRoot('.', '.'), 'EJAILPIVOT', `Failed to pivot_root into ${root}`);
  check(sys.umount2('.', MNT_DETACH), 'EJAILPIVOT', 'Failed to detach the old root');
  process.chdir('/');
}

const F_SETFD = 2;

/**
 * Marks every fd past stdio close-on-exec, so the VMM starts with none of the jailer's, and
 * keeps stdio across exec (Node marks 0-2 close-on-exec at start-up).
 */
export function closeOnExec(sys: Sys): void {
  check(sys.closeRange(3, 0xffffffff, CLOSE_RANGE_CLOEXEC), 'EJAILFDS', 'Failed to mark file descriptors close-on-exec');
  for (const fd of [0, 1, 2]) sys.fcntl(fd, F_SETFD, 0);
}

export function noNewPrivileges(sys: Sys): void {
  check(sys.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 'EJAILPRIVS', 'Failed to set no_new_privs');
}

/** Drops to uid:gid for good (real, effective and saved), with no supplementary groups. */
export function dropCredentials(sys: Sys, uid: number, gid: number): void {
  check(sys.setgroups([]), 'EJAILCREDS', 'Failed to clear the supplementary groups');
  check(sys.setresgid(gid, gid, gid), 'EJAILCREDS', `Failed to change to gid ${gid}`);
  check(sys.setresuid(uid, uid, uid), 'EJAILCREDS', `Failed to change to uid ${uid}`);
}
