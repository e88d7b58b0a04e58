/**
 * Guest artifacts for tests and users: a microVM kernel, an initramfs and an ext4 rootfs,
 * built by the scripts under guest/ and cached by content hash (see cache.ts, inputs.ts).
 * ensure* builds what is missing and returns an absolute path; guestCachePaths() only says
 * where the artifacts are or would be.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { SparklerError } from '../errors';
import { artifactDir, buildOnce, cacheRoot } from './cache';
import { ArtifactKind, BUSYBOX, LINUX_TARBALL, SPECS, artifactInputs, guestDir, hashInputs } from './inputs';

export interface GuestCachePaths {
  root: string;
  kernel: { dir: string; vmlinux: string; bzImage: string; config: string };
  initrd: { dir: string; initrd: string };
  rootfs: { dir: string; rootfs: string };
}

/** Hash of one artifact's inputs (reads guest/ files and asks dpkg for package versions). */
export function artifactHash(kind: ArtifactKind): string {
  return hashInputs(artifactInputs(SPECS[kind]));
}

/** Where each artifact is or would be; builds nothing. Throws if a needed package is missing. */
export function guestCachePaths(): GuestCachePaths {
  const root = cacheRoot();
  const kernel = artifactDir(root, 'kernel', artifactHash('kernel'));
  const initrd = artifactDir(root, 'initrd', artifactHash('initrd'));
  const rootfs = artifactDir(root, 'rootfs', artifactHash('rootfs'));
  return {
    root,
    kernel: {
      dir: kernel,
      vmlinux: path.join(kernel, 'vmlinux'),
      bzImage: path.join(kernel, 'bzImage'),
      config: path.join(kernel, 'config'),
    },
    initrd: { dir: initrd, initrd: path.join(initrd, 'initrd.cpio.gz') },
    rootfs: { dir: rootfs, rootfs: path.join(rootfs, 'rootfs.ext4') },
  };
}

const log = (line: string) => process.stderr.write(`[guest] ${line}\n`);

/** Runs a guest/ build script; its stdout and stderr both go to our stderr (progress). */
function runScript(script: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, LINUX_TARBALL, BUSYBOX };
    const child = spawn('bash', [path.join(guestDir(), script), ...args], { stdio: ['ignore', 2, 2], env });
    child.on('error', (err) => reject(new SparklerError('EGUESTBUILD', `Could not start guest/${script}.`, { cause: err })));
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new SparklerError('EGUESTBUILD', `guest/${script} failed (${signal ?? `exit code ${code}`}); its output above says why.`));
    });
  });
}

// One build per artifact per process, however many callers ask at once.
const inFlight = new Map<string, Promise<string>>();

async function ensureArtifact(kind: ArtifactKind): Promise<string> {
  const spec = SPECS[kind];
  const hash = artifactHash(kind);
  const key = `${kind}/${hash}`;
  let pending = inFlight.get(key);
  if (pending === undefined) {
    pending = buildOnce({
      root: cacheRoot(),
      kind,
      hash,
      outputs: spec.outputs,
      log,
      build: async (out, work) => {
        log(`building ${kind} ${hash.slice(0, 12)}${kind === 'kernel' ? ' (several minutes)' : ''}`);
        const started = Date.now();
        await runScript(spec.script, spec.args(out, work));
        log(`${kind} built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      },
    }).finally(() => inFlight.delete(key));
    inFlight.set(key, pending);
  }
  return pending;
}

/** Absolute path of the microVM kernel: the ELF vmlinux (default) or the bzImage. */
export async function ensureKernel(opts: { format?: 'vmlinux' | 'bzimage' } = {}): Promise<string> {
  const dir = await ensureArtifact('kernel');
  return path.join(dir, opts.format === 'bzimage' ? 'bzImage' : 'vmlinux');
}

/** Absolute path of the busybox initramfs (gzip-compressed cpio newc, /init). */
export async function ensureInitrd(): Promise<string> {
  return path.join(await ensureArtifact('initrd'), 'initrd.cpio.gz');
}

/** Absolute path of the busybox ext4 rootfs image (/sbin/init). */
export async function ensureRootfs(): Promise<string> {
  return path.join(await ensureArtifact('rootfs'), 'rootfs.ext4');
}
