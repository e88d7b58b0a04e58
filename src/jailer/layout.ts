/**
 * The chroot on disk: `<base>/<exec_file_name>/<id>/root` (0700, owned uid:gid) with dev/kvm,
 * dev/net/tun, dev/urandom and dev/userfaultfd as device nodes, run/, the exec file copied in,
 * and empty mount points for the runtime (src/jailer/runtime.ts). Everything this creates is
 * recorded so that a failure removes it again (Undo).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IsolationShim } from '../native';
import { JailerError, errnoOf, osError } from './errors';
import { RuntimeMount } from './runtime';

const S_IFCHR = 0o020000;

export interface DeviceNode {
  /** Relative to the chroot root. */
  path: string;
  major: number;
  minor: number;
  /** A node the VMM can do without: its failure is a warning (urandom: only MMDS tokens need it). */
  optional?: boolean;
}

/** The nodes every jail gets; dev/userfaultfd is added when the host has one (its minor varies). */
export const DEVICE_NODES: readonly DeviceNode[] = [
  { path: 'dev/kvm', major: 10, minor: 232 },
  { path: 'dev/net/tun', major: 10, minor: 200 },
  { path: 'dev/urandom', major: 1, minor: 9, optional: true },
];

/** What to remove if the jail cannot be finished: paths in creation order, removed in reverse. */
export class Undo {
  private readonly created: { path: string; cgroup: boolean }[] = [];
  /** A file or a directory tree this run created. */
  add(p: string): void {
    this.created.push({ path: p, cgroup: false });
  }
  /** A cgroup directory: removed with rmdir (its files cannot be unlinked). */
  addCgroup(p: string): void {
    this.created.push({ path: p, cgroup: true });
  }
  /** Removes everything recorded (best effort: a failure here must not hide the first one). */
  run(): void {
    for (const p of this.created.reverse()) {
      try {
        if (p.cgroup) fs.rmdirSync(p.path);
        else fs.rmSync(p.path, { recursive: true, force: true });
      } catch {
        // leave it: the original error is what the user needs to read
      }
    }
    this.created.length = 0;
  }
}

export interface Layout {
  /** `<base>/<exec_file_name>/<id>/root`. */
  root: string;
  /** The exec file's path inside the chroot (`/<exec_file_name>`). */
  execInJail: string;
}

export function chrootDir(base: string, execFile: string, id: string): string {
  return path.join(base, path.basename(execFile), id, 'root');
}

/** mkdir -p that records the first directory it had to create. */
function makeDirs(dir: string, undo: Undo): void {
  const missing: string[] = [];
  for (let d = dir; !fs.existsSync(d); d = path.dirname(d)) missing.unshift(d);
  if (missing.length === 0) return;
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new JailerError('EJAILDIR', `Failed to create directory ${dir}: ${osError(errnoOf(err))}`);
  }
  undo.add(missing[0]);
}

/** Canonical exec file: Firecracker's texts for a missing path and for a directory. */
export function canonicalExecFile(execFile: string): string {
  let real: string;
  try {
    real = fs.realpathSync(execFile);
  } catch (err) {
    throw new JailerError('EJAILEXEC', `Failed to canonicalize path ${execFile}: ${osError(errnoOf(err))}`);
  }
  if (!fs.statSync(real).isFile()) throw new JailerError('EJAILEXEC', `${execFile} is not a file`);
  return real;
}

/**
 * Copies the exec file to `dst` (mode 0755, uid:gid). A symlink there is refused (it could point
 * anywhere on the host) and so is a hard link (writing it would change another file).
 */
function copyExecFile(src: string, dst: string, uid: number, gid: number): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.lstatSync(dst);
  } catch {
    st = undefined;
  }
  if (st?.isSymbolicLink()) throw new JailerError('EJAILEXEC', `Failed to open ${dst}: ${osError(40)}`);
  if (st && st.nlink > 1) throw new JailerError('EJAILEXEC', `Detected hard link at: ${dst}`);
  let fd: number;
  try {
    fd = fs.openSync(dst, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o755);
  } catch (err) {
    throw new JailerError('EJAILEXEC', `Failed to open ${dst}: ${osError(errnoOf(err))}`);
  }
  try {
    fs.writeFileSync(fd, fs.readFileSync(src));
    fs.fchmodSync(fd, 0o755);
    fs.fchownSync(fd, uid, gid);
  } catch (err) {
    throw new JailerError('EJAILEXEC', `Failed to copy ${src} to ${dst}: ${osError(errnoOf(err))}`);
  } finally {
    fs.closeSync(fd);
  }
}

function ownedDir(dir: string, uid: number, gid: number): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, 0o700);
  fs.chownSync(dir, uid, gid);
}

/** glibc's major()/minor() of a dev_t (minors above 255 live in bits 20 and up). */
export function splitDev(rdev: number): { major: number; minor: number } {
  const d = BigInt(rdev);
  return { major: Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn)), minor: Number((d & 0xffn) | ((d >> 12n) & ~0xffn)) };
}

/** The host's dev/userfaultfd as a node to make, when the host has one. */
export function hostUserfaultfd(): DeviceNode | undefined {
  try {
    const st = fs.statSync('/dev/userfaultfd');
    if (!st.isCharacterDevice()) return undefined;
    return { path: 'dev/userfaultfd', ...splitDev(st.rdev), optional: true };
  } catch {
    return undefined;
  }
}

export interface LayoutRequest {
  base: string;
  id: string;
  execFile: string;
  uid: number;
  gid: number;
  mounts: readonly RuntimeMount[];
  nodes: readonly DeviceNode[];
  warn: (message: string) => void;
}

export function buildLayout(sys: Pick<IsolationShim, 'mknod'>, req: LayoutRequest, undo: Undo): Layout {
  const root = chrootDir(req.base, req.execFile, req.id);
  makeDirs(root, undo);
  try {
    ownedDir(root, req.uid, req.gid);
    for (const d of ['dev', 'dev/net', 'run']) ownedDir(path.join(root, d), req.uid, req.gid);
  } catch (err) {
    throw new JailerError('EJAILDIR', `Failed to set up the chroot directory ${root}: ${osError(errnoOf(err))}`);
  }
  for (const node of req.nodes) {
    const p = path.join(root, node.path);
    fs.rmSync(p, { force: true });
    const r = sys.mknod(p, S_IFCHR | 0o600, node.major, node.minor);
    if (r < 0) {
      const message = `Failed to create ${p} (c ${node.major},${node.minor}): ${osError(r)}`;
      if (node.optional) {
        req.warn(message);
        continue;
      }
      throw new JailerError('EJAILDEV', message);
    }
    fs.chownSync(p, req.uid, req.gid);
  }
  const name = path.basename(req.execFile);
  copyExecFile(req.execFile, path.join(root, name), req.uid, req.gid);
  for (const m of req.mounts) makeMountPoint(root, m);
  return { root, execInJail: `/${name}` };
}

/** An empty file or directory at the mount's target inside root (root-owned, 0755). */
function makeMountPoint(root: string, m: RuntimeMount): void {
  const p = path.join(root, m.target);
  try {
    fs.mkdirSync(m.directory ? p : path.dirname(p), { recursive: true, mode: 0o755 });
    if (!m.directory && !fs.existsSync(p)) fs.writeFileSync(p, '', { mode: 0o644 });
  } catch (err) {
    throw new JailerError('EJAILDIR', `Failed to create the mount point ${p}: ${osError(errnoOf(err))}`);
  }
}

/** Writes `<exec_file_name>.pid` in the chroot's root. */
export function writePidFile(file: string, pid: number): void {
  try {
    fs.writeFileSync(file, `${pid}`);
  } catch (err) {
    throw new JailerError('EJAILPID', `Failed to write the pid file ${file}: ${osError(errnoOf(err))}`);
  }
}
