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
import { growImage } from './grow-image';
import { aptCandidateVersions } from './apt';
import { ArtifactKind, BUSYBOX, LINUX_TARBALL, SPECS, artifactInputs, dpkgVersions, guestDir, hashInputs } from './inputs';

export interface GuestCachePaths {
  root: string;
  kernel: { dir: string; vmlinux: string; bzImage: string; config: string };
  initrd: { dir: string; initrd: string };
  rootfs: { dir: string; rootfs: string };
}

/** Hash of one artifact's inputs (reads guest/ files and asks dpkg for package versions). */
export function artifactHash(kind: ArtifactKind): string {
  const spec = SPECS[kind];
  const inputs = artifactInputs(spec, dpkgVersions, guestDir(), aptCandidateVersions);
  for (const dep of spec.after ?? []) inputs.push({ name: `after:${dep}`, content: artifactHash(dep) });
  return hashInputs(inputs);
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
function runScript(script: string, args: string[], extraEnv: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, LINUX_TARBALL, BUSYBOX, ...extraEnv };
    const child = spawn('bash', [path.join(guestDir(), script), ...args], { stdio: ['ignore', 2, 2], env });
    child.on('error', (err) => reject(new SparklerError('EGUESTBUILD', `Could not start guest/${script}.`, { cause: err })));
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new SparklerError('EGUESTBUILD', `guest/${script} failed (${signal ?? `exit code ${code}`}); its output above says why.`));
    });
  });
}

const SLOW: Partial<Record<ArtifactKind, string>> = { kernel: ' (several minutes)', 'debian-rootfs': ' (several minutes)' };

// One build per artifact per process, however many callers ask at once.
const inFlight = new Map<string, Promise<string>>();

async function ensureArtifact(kind: ArtifactKind): Promise<string> {
  const spec = SPECS[kind];
  const hash = artifactHash(kind);
  const afterDirs: string[] = [];
  for (const dep of spec.after ?? []) afterDirs.push(await ensureArtifact(dep));
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
        log(`building ${kind} ${hash.slice(0, 12)}${SLOW[kind] ?? ''}`);
        const started = Date.now();
        const env = spec.env?.(spec.aptPackages ? aptCandidateVersions(spec.aptPackages) : {});
        await runScript(spec.script, spec.args(out, work, afterDirs), env);
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

/** Debian's cloud kernel (a bzImage) and its modules, unpacked from linux-image-cloud-amd64. */
export async function ensureDebianKernel(): Promise<{ vmlinuz: string; dir: string }> {
  const dir = await ensureArtifact('debian-kernel');
  return { dir, vmlinuz: path.join(dir, 'vmlinuz') };
}

/** The initramfs for Debian's kernel: loads its virtio modules, mounts root= or runs the busybox init. */
export async function ensureDebianInitrd(): Promise<string> {
  return path.join(await ensureArtifact('debian-initrd'), 'initrd.cpio.gz');
}

/** The busybox rootfs plus iperf3, socat and fio from Debian with their libraries. */
export async function ensureToolsRootfs(): Promise<string> {
  return path.join(await ensureArtifact('tools-rootfs'), 'rootfs.ext4');
}

/** Debian 12 with systemd; `sizeMib` grows the image (a copy cached beside the base image). */
export async function ensureDebianRootfs(opts: { sizeMib?: number } = {}): Promise<string> {
  const base = path.join(await ensureArtifact('debian-rootfs'), 'rootfs.ext4');
  if (opts.sizeMib === undefined) return base;
  return growImage(base, opts.sizeMib, log);
}
