/**
 * The emulated host's kernel and initramfs: a Debian linux-image-*-amd64-unsigned kernel (its
 * kvm-amd module gives real KVM-SVM on QEMU's emulated EPYC) and an initramfs of static
 * busybox, the few modules needed, and guest/emuhost/init.sh. Built once per kernel package
 * version and recipe into the cache, atomically (temp dir + rename), so concurrent runs are safe.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp, existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { SparklerError } from '../errors';
import { writeCpio, type CpioEntry } from './cpio';
import { pvhKernel } from './kernel';
import { loadOrder, moduleDepends, moduleKey } from './kmod';
import { isStaticElf, runTool, which } from './tools';

/** Bump when the image layout changes in a way the recipe hash does not see. */
const FORMAT = 3;
/**
 * Modules insmod'ed at boot (with their dependencies): 9p over PCI virtio, KVM on AMD, and tun
 * (/dev/net/tun, for tap-backed guest network devices; ~60 KB).
 */
export const ROOT_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'kvm_amd', 'tun'];
/** Their usual closure, extracted in the first pass so that one pass normally suffices. */
const EXPECTED_MODULES = [
  'virtio', 'virtio_ring', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', '9pnet', 'netfs',
  'fscache', 'kvm', 'irqbypass', 'ccp',
];
const APPLETS = ['sh', 'mount', 'insmod', 'mkdir', 'chroot', 'env', 'poweroff', 'cat', 'echo', 'sleep'];
const BUSYBOX = '/bin/busybox';

export interface EmuHostManifest {
  format: number;
  recipeHash: string;
  kernelPackage: string;
  kernelVersion: string;
  kernelRelease: string;
  /** 'vmlinux' (PVH entry, fast) or 'vmlinuz' (the package's bzImage, as a fallback). */
  kernelFile: string;
  modules: string[];
  builtAt: string;
}

export interface EmuHostImage {
  dir: string;
  kernel: string;
  initrd: string;
  manifest: EmuHostManifest;
}

export type Progress = (line: string) => void;

export function cacheRoot(): string {
  return process.env.SPARKLER_CACHE ?? '/var/cache/sparkler';
}

export function initTemplatePath(): string {
  // dist/emuhost and src/emuhost are both two levels below the repository root.
  return resolve(__dirname, '..', '..', 'guest', 'emuhost', 'init.sh');
}

function readInitTemplate(): string {
  try {
    return readFileSync(initTemplatePath(), 'utf8');
  } catch (e) {
    throw new SparklerError('EMUHOST_INIT', `The emulated host's init script is missing at ${initTemplatePath()}.`, { cause: e });
  }
}

/** Hash of everything in the image that is not the kernel package: invalidates on edits. */
export function recipeHash(): string {
  return createHash('sha256')
    .update(JSON.stringify({ FORMAT, init: readInitTemplate(), ROOT_MODULES, APPLETS }))
    .digest('hex');
}

function imageKey(recipe: string, pkg: string, version: string): string {
  return createHash('sha256').update(`${recipe}\n${pkg}\n${version}`).digest('hex').slice(0, 16);
}

/** The kernel package pinned by SPARKLER_EMUHOST_KERNEL_PKG, if any. */
function pinnedPackage(): string | undefined {
  return process.env.SPARKLER_EMUHOST_KERNEL_PKG || undefined;
}

/** A complete cached image built from the current recipe (newest first), without asking apt. */
export function findCachedImage(): EmuHostImage | undefined {
  const root = cacheRoot();
  let names: string[];
  try {
    names = readdirSync(root).filter((n) => n.startsWith('emuhost-'));
  } catch {
    return undefined;
  }
  const recipe = recipeHash();
  const pin = pinnedPackage();
  const found: EmuHostImage[] = [];
  for (const n of names) {
    const dir = join(root, n);
    try {
      const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as EmuHostManifest;
      if (manifest.recipeHash !== recipe || (pin && manifest.kernelPackage !== pin)) continue;
      const img = { dir, kernel: join(dir, manifest.kernelFile), initrd: join(dir, 'initrd.cpio'), manifest };
      if (existsSync(img.kernel) && existsSync(img.initrd)) found.push(img);
    } catch {
      // an unrelated or foreign folder: ignore it
    }
  }
  found.sort((a, b) => b.manifest.builtAt.localeCompare(a.manifest.builtAt));
  return found[0];
}

/** Returns the cached image, building it first if needed. */
export async function prepareImage(progress: Progress = (l) => process.stderr.write(`emuhost: ${l}\n`)): Promise<EmuHostImage> {
  return findCachedImage() ?? buildImage(progress);
}

/** The newest generic amd64 unsigned kernel image package apt knows (6.1 preferred: tested). */
async function pickKernelPackage(progress: Progress): Promise<string> {
  const pin = pinnedPackage();
  if (pin) return pin;
  if (!which('apt-cache') || !which('apt-get') || !which('dpkg-deb')) {
    throw new SparklerError('EMUHOST_NO_APT',
      'Building the emulated host needs a Debian kernel package, fetched with apt-get and dpkg-deb, which are not on this machine.');
  }
  const search = async (): Promise<string[]> => {
    const r = await runTool('apt-cache', ['search', '--names-only', '^linux-image-[0-9.]+-[0-9]+-amd64-unsigned$']);
    return r.stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.length > 0);
  };
  let names = await search();
  if (names.length === 0 && process.getuid?.() === 0) {
    progress('apt-cache knows no linux-image-*-amd64-unsigned package; running apt-get update');
    await runTool('apt-get', ['update', '-qq']);
    names = await search();
  }
  if (names.length === 0) {
    throw new SparklerError('EMUHOST_NO_KERNEL',
      'No linux-image-*-amd64-unsigned package is known to apt: run `apt-get update` (as root) on this Debian machine, or set SPARKLER_EMUHOST_KERNEL_PKG.');
  }
  const byVersion = (a: string, b: string): number => a.localeCompare(b, 'en', { numeric: true });
  const preferred = names.filter((n) => n.startsWith('linux-image-6.1.0-')).sort(byVersion);
  return (preferred.length > 0 ? preferred : names.sort(byVersion)).at(-1) as string;
}

/** `dpkg-deb --fsys-tarfile deb | tar -x` of the members matching the wildcard patterns. */
function extract(deb: string, dir: string, patterns: string[]): Promise<void> {
  return new Promise((resolveP, reject) => {
    const dpkg = spawn('dpkg-deb', ['--fsys-tarfile', deb], { stdio: ['ignore', 'pipe', 'pipe'] });
    // tar fails on patterns that match nothing; the caller checks what actually arrived.
    const tar = spawn('tar', ['-x', '-C', dir, '--wildcards', ...patterns], { stdio: ['pipe', 'ignore', 'ignore'] });
    dpkg.stdout.pipe(tar.stdin);
    let err = '';
    dpkg.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    dpkg.on('error', reject);
    tar.on('error', reject);
    let dpkgCode: number | null = null;
    dpkg.on('close', (c) => { dpkgCode = c; });
    tar.on('close', () => {
      if (dpkgCode !== null && dpkgCode !== 0) reject(new Error(`dpkg-deb failed on ${deb}: ${err.trim()}`));
      else resolveP();
    });
  });
}

/** Every .ko under dir, by module key. */
async function findModules(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await fsp.readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.ko')) out.set(moduleKey(e.name.slice(0, -3)), p);
    }
  };
  if (existsSync(join(dir, 'lib'))) await walk(join(dir, 'lib'));
  return out;
}

const modulePattern = (key: string): string => `*/kernel/*/${key.replace(/_/g, '[-_]')}.ko`;

async function buildImage(progress: Progress): Promise<EmuHostImage> {
  const busyboxOk = existsSync(BUSYBOX) && isStaticElf(BUSYBOX);
  if (!busyboxOk) {
    throw new SparklerError('EMUHOST_NO_BUSYBOX',
      `The emulated host's initramfs needs a static busybox at ${BUSYBOX}: apt-get install busybox-static.`);
  }
  const pkg = await pickKernelPackage(progress);
  const root = cacheRoot();
  try {
    await mkdirs(root);
  } catch (e) {
    throw new SparklerError('EMUHOST_CACHE', `Cannot create the cache directory ${root}: set SPARKLER_CACHE to a writable directory.`, { cause: e });
  }
  await removeStaleBuilds(root);
  const tmp = join(root, `.tmp-emuhost-${process.pid}-${randomBytes(4).toString('hex')}`);
  await fsp.mkdir(tmp);
  try {
    const debPath = await downloadPackage(pkg, tmp, progress);
    const version = (await runTool('dpkg-deb', ['-f', debPath, 'Version'])).stdout.trim();
    const recipe = recipeHash();
    const final = join(root, `emuhost-${imageKey(recipe, pkg, version)}`);
    if (existsSync(join(final, 'manifest.json'))) return loadImage(final);

    progress(`extracting the kernel and ${ROOT_MODULES.join(', ')} with dependencies`);
    const x = join(tmp, 'x');
    await fsp.mkdir(x);
    await extract(debPath, x, ['./boot/vmlinuz-*', ...[...ROOT_MODULES, ...EXPECTED_MODULES].map(modulePattern)]);
    let mods = await findModules(x);
    // Fetch any dependency the expected list missed (another kernel version may differ).
    for (let pass = 0; pass < 4; pass++) {
      const missing = new Set<string>();
      for (const p of mods.values()) {
        for (const d of moduleDepends(await fsp.readFile(p))) if (!mods.has(moduleKey(d))) missing.add(moduleKey(d));
      }
      if (missing.size === 0) break;
      await extract(debPath, x, [...missing].map(modulePattern));
      mods = await findModules(x);
    }
    const deps = new Map<string, string[]>();
    for (const [k, p] of mods) deps.set(k, moduleDepends(await fsp.readFile(p)).map(moduleKey));
    const order = loadOrder(ROOT_MODULES, deps);
    const kernels = (await fsp.readdir(join(x, 'boot')).catch(() => [])).filter((n) => n.startsWith('vmlinuz-'));
    if (kernels.length !== 1) throw new SparklerError('EMUHOST_KERNEL', `${pkg} has no single /boot/vmlinuz-*.`);
    const release = (kernels[0] as string).slice('vmlinuz-'.length);

    progress('building the initramfs');
    const out = join(tmp, 'out');
    await fsp.mkdir(out);
    const init = readInitTemplate().replace('@MODULES@', order.join(' '));
    const entries: CpioEntry[] = [
      ...['bin', 'dev', 'proc', 'sys', 'host', 'emu', 'lib', 'lib/modules'].map((path): CpioEntry => ({ kind: 'dir', path })),
      { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
      { kind: 'file', path: 'init', data: Buffer.from(init), mode: 0o755 },
      { kind: 'file', path: 'bin/busybox', data: await fsp.readFile(BUSYBOX), mode: 0o755 },
      ...APPLETS.map((a): CpioEntry => ({ kind: 'symlink', path: `bin/${a}`, target: 'busybox' })),
    ];
    for (const k of order) entries.push({ kind: 'file', path: `lib/modules/${k}.ko`, data: await fsp.readFile(mods.get(k) as string) });
    // Uncompressed: the kernel unpacks it faster than it would gunzip it under TCG.
    await fsp.writeFile(join(out, 'initrd.cpio'), writeCpio(entries));
    const bz = await fsp.readFile(join(x, 'boot', kernels[0] as string));
    progress('unpacking the kernel for direct (PVH) boot');
    const vmlinux = pvhKernel(bz);
    const kernelFile = vmlinux ? 'vmlinux' : 'vmlinuz';
    if (!vmlinux) progress('no PVH-capable vmlinux inside (or no xz/zstd tool): booting the bzImage, ~5 s slower');
    await fsp.writeFile(join(out, kernelFile), vmlinux ?? bz);
    const manifest: EmuHostManifest = {
      format: FORMAT, recipeHash: recipe, kernelPackage: pkg, kernelVersion: version,
      kernelRelease: release, kernelFile, modules: order, builtAt: new Date().toISOString(),
    };
    await fsp.writeFile(join(out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    try {
      await fsp.rename(out, final);
    } catch (e) {
      // Another process finished the same image first: use theirs.
      if (!existsSync(join(final, 'manifest.json'))) throw e;
    }
    progress(`ready: ${final} (${basename(pkg)} ${version})`);
    await pruneImages(final);
    return loadImage(final);
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

/** Temp dirs of builds whose process died (killed mid-build). */
async function removeStaleBuilds(root: string): Promise<void> {
  for (const n of await fsp.readdir(root)) {
    const pid = /^\.tmp-emuhost-(\d+)-/.exec(n)?.[1];
    if (pid === undefined) continue;
    try {
      process.kill(Number(pid), 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') await fsp.rm(join(root, n), { recursive: true, force: true });
    }
  }
}

/**
 * mkdir -p, one level at a time: Node's recursive mkdir spins forever under /proc (ENOENT on
 * the child, EEXIST on the parent, again and again).
 */
async function mkdirs(dir: string): Promise<void> {
  let path = '';
  for (const part of resolve(dir).split('/').filter((p) => p.length > 0)) {
    path += `/${part}`;
    await fsp.mkdir(path).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'EEXIST') throw e; });
  }
}

/**
 * Fetches the package with apt-get download, keeping the last .deb in the cache so that a
 * recipe change (an edit of init.sh) rebuilds without downloading again.
 */
async function downloadPackage(pkg: string, tmp: string, progress: Progress): Promise<string> {
  const debs = join(cacheRoot(), 'emuhost-debs');
  await fsp.mkdir(debs).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'EEXIST') throw e; });
  const kept = (await fsp.readdir(debs)).filter((n) => n.startsWith(`${pkg}_`) && n.endsWith('.deb'));
  if (kept.length > 0 && !process.env.SPARKLER_EMUHOST_REFRESH) return join(debs, kept.sort().at(-1) as string);
  progress(`downloading ${pkg} (about 70 MB)`);
  const dl = await runTool('apt-get', ['download', pkg], { cwd: tmp });
  const deb = (await fsp.readdir(tmp)).find((n) => n.endsWith('.deb'));
  if (dl.code !== 0 || !deb) {
    throw new SparklerError('EMUHOST_DOWNLOAD',
      `apt-get download ${pkg} failed (${dl.stderr.trim().split('\n').pop() ?? 'no output'}); check the network and apt sources.`);
  }
  // rename replaces a concurrent build's copy of the same file atomically; older ones go.
  await fsp.rename(join(tmp, deb), join(debs, deb));
  for (const old of await fsp.readdir(debs)) if (old !== deb) await fsp.rm(join(debs, old), { force: true });
  return join(debs, deb);
}

/** Keeps the newest few images (about 80 MB each): older recipes or kernels are rebuilt on demand. */
async function pruneImages(keep: string, max = 3): Promise<void> {
  const root = cacheRoot();
  const dirs: { dir: string; at: string }[] = [];
  for (const n of await fsp.readdir(root)) {
    if (!n.startsWith('emuhost-') || n === 'emuhost-debs') continue;
    const dir = join(root, n);
    const at = await fsp.readFile(join(dir, 'manifest.json'), 'utf8')
      .then((t) => (JSON.parse(t) as EmuHostManifest).builtAt, () => '');
    dirs.push({ dir, at });
  }
  dirs.sort((a, b) => b.at.localeCompare(a.at));
  for (const d of dirs.slice(max)) if (d.dir !== keep) await fsp.rm(d.dir, { recursive: true, force: true });
}

function loadImage(dir: string): EmuHostImage {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as EmuHostManifest;
  return { dir, kernel: join(dir, manifest.kernelFile), initrd: join(dir, 'initrd.cpio'), manifest };
}
