/**
 * What determines each guest artifact: the files under guest/ that build it and the Debian
 * packages it is made from. Their sha256 names the artifact's cache folder, so a change to
 * any input gives a new folder and an old artifact is never reused by mistake.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { SparklerError } from '../errors';
import { DEBIAN_SPECS } from './debian-specs';

export type ArtifactKind = 'kernel' | 'initrd' | 'rootfs' | 'debian-kernel' | 'debian-initrd' | 'tools-rootfs' | 'debian-rootfs';

export interface ArtifactSpec {
  kind: ArtifactKind;
  /** Files under guest/ whose content determines the artifact. */
  files: string[];
  /** Debian packages whose version determines the artifact. */
  packages: string[];
  /** Debian packages the build downloads; their apt candidate versions are inputs. */
  aptPackages?: string[];
  /** Artifacts it is made from: their hashes are inputs and their folders are passed to args. */
  after?: ArtifactKind[];
  /** The script under guest/ that builds it, and its arguments. */
  script: string;
  args: (outDir: string, workDir: string, after: string[]) => string[];
  /** Environment for the script, from the apt versions of aptPackages. */
  env?: (aptVersions: Record<string, string>) => Record<string, string>;
  /** Files the build leaves in outDir. */
  outputs: string[];
}

/** Bump to invalidate every cached artifact when the way they are built changes outside guest/. */
const RECIPE_VERSION = '1';

export const LINUX_TARBALL = '/usr/src/linux-source-6.1.tar.xz';
export const BUSYBOX = '/bin/busybox';

export const SPECS: Record<ArtifactKind, ArtifactSpec> = {
  kernel: {
    kind: 'kernel',
    files: ['kernel/microvm.config', 'kernel/build.sh', 'kernel/check-fragment.sh'],
    packages: ['linux-source-6.1', 'gcc', 'binutils'],
    script: 'kernel/build.sh',
    args: (out, work) => [out, work],
    outputs: ['vmlinux', 'bzImage', 'config', 'System.map'],
  },
  initrd: {
    kind: 'initrd',
    files: ['init/init', 'rootfs/stage.sh', 'rootfs/build-initrd.sh', 'agent/agent.c', 'agent/build.sh'],
    packages: ['busybox-static', 'cpio', 'gcc', 'libc6-dev'],
    script: 'rootfs/build-initrd.sh',
    args: (out, work) => [path.join(out, 'initrd.cpio.gz'), work],
    outputs: ['initrd.cpio.gz'],
  },
  rootfs: {
    kind: 'rootfs',
    files: ['init/init', 'rootfs/stage.sh', 'rootfs/build-rootfs.sh', 'agent/agent.c', 'agent/build.sh'],
    packages: ['busybox-static', 'e2fsprogs', 'gcc', 'libc6-dev'],
    script: 'rootfs/build-rootfs.sh',
    args: (out, work) => [path.join(out, 'rootfs.ext4'), work],
    outputs: ['rootfs.ext4'],
  },
  ...DEBIAN_SPECS,
};

/** guest/ at the repository root; the same from src/guest and dist/guest. */
export function guestDir(): string {
  return path.resolve(__dirname, '..', '..', 'guest');
}

export interface HashInput {
  name: string;
  content: string | Buffer;
}

/** sha256 over named inputs; names and lengths are hashed too, so inputs cannot run together. */
export function hashInputs(inputs: readonly HashInput[]): string {
  const h = createHash('sha256');
  for (const input of inputs) {
    const content = typeof input.content === 'string' ? Buffer.from(input.content) : input.content;
    h.update(`${input.name}\0${content.length}\0`);
    h.update(content);
  }
  return h.digest('hex');
}

/** Installed versions of Debian packages, via dpkg-query; a missing package is an error. */
export type PackageVersions = (packages: readonly string[]) => Record<string, string>;

// Package versions do not change while we run; ask dpkg once per package list.
const versionCache = new Map<string, Record<string, string>>();

export const dpkgVersions: PackageVersions = (packages) => {
  const key = packages.join(' ');
  const cached = versionCache.get(key);
  if (cached !== undefined) return cached;
  let text: string;
  try {
    text = execFileSync('dpkg-query', ['-W', '-f', '${Package} ${db:Status-Abbrev}${Version}\n', ...packages], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch (err) {
    // dpkg-query exits 1 when one package is unknown but still prints the others.
    const stdout = (err as { stdout?: unknown }).stdout;
    if (typeof stdout !== 'string') {
      throw new SparklerError('EGUESTDEPS', 'Could not run dpkg-query to read package versions; guest artifacts are built from Debian packages.', { cause: err });
    }
    text = stdout;
  }
  const versions: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^(\S+?)(?::\S+)? ii\s+(\S+)$/.exec(line.trim());
    if (m) versions[m[1]!] = m[2]!;
  }
  const missing = packages.filter((p) => versions[p] === undefined);
  if (missing.length > 0) {
    throw new SparklerError('EGUESTDEPS', `Missing Debian package(s) ${missing.join(', ')}: install them with 'apt-get install -y ${missing.join(' ')}'.`);
  }
  versionCache.set(key, versions);
  return versions;
};

/** Every input of one artifact, in a fixed order. */
export function artifactInputs(spec: ArtifactSpec, versions: PackageVersions = dpkgVersions, root = guestDir(), aptVersions?: PackageVersions): HashInput[] {
  const inputs: HashInput[] = [{ name: 'recipe', content: `${RECIPE_VERSION} ${spec.kind}` }];
  for (const file of spec.files) inputs.push({ name: `file:${file}`, content: readFileSync(path.join(root, file)) });
  const v = versions(spec.packages);
  for (const pkg of spec.packages) inputs.push({ name: `package:${pkg}`, content: v[pkg]! });
  const apt = spec.aptPackages ?? [];
  if (apt.length > 0) {
    const a = (aptVersions ?? versions)(apt);
    for (const pkg of apt) inputs.push({ name: `apt:${pkg}`, content: a[pkg]! });
  }
  return inputs;
}
