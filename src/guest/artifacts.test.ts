/**
 * Builds the initrd and rootfs for real in a temp cache (a few seconds), and checks the kernel
 * when it is already in the cache (building it takes minutes: `sparkler guest kernel`).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { gunzipSync } from 'node:zlib';
import * as path from 'node:path';
import { ensureInitrd, ensureRootfs, guestCachePaths } from './index';
import { SPECS, dpkgVersions, guestDir } from './inputs';

function missingDeps(packages: string[]): string | false {
  try {
    dpkgVersions(packages);
    return false;
  } catch (err) {
    return (err as Error).message;
  }
}

const userCache = process.env['SPARKLER_CACHE'];
const temp = mkdtempSync(path.join(tmpdir(), 'sparkler-artifacts-'));
after(() => rmSync(temp, { recursive: true, force: true }));

/** Runs fn with SPARKLER_CACHE pointing at the temp cache. */
async function inTempCache<T>(fn: () => Promise<T>): Promise<T> {
  process.env['SPARKLER_CACHE'] = temp;
  try {
    return await fn();
  } finally {
    if (userCache === undefined) delete process.env['SPARKLER_CACHE'];
    else process.env['SPARKLER_CACHE'] = userCache;
  }
}

const initText = readFileSync(path.join(guestDir(), 'init', 'init'), 'utf8');

test('the initrd is a gzip cpio (newc) with /init and busybox', { skip: missingDeps(SPECS.initrd.packages) }, async () => {
  const initrd = await inTempCache(ensureInitrd);
  assert.ok(initrd.startsWith(temp) && path.isAbsolute(initrd));
  const cpio = gunzipSync(readFileSync(initrd));
  assert.equal(cpio.subarray(0, 6).toString(), '070701', 'newc magic');
  const names = execFileSync('cpio', ['-it', '--quiet'], { input: cpio, encoding: 'utf8' }).split('\n');
  for (const name of ['init', 'bin/busybox', 'bin/sh', 'sbin/reboot', 'bin/base64', 'sbin/devmem']) {
    assert.ok(names.includes(name), `${name} in the initrd`);
  }
  const listing = execFileSync('cpio', ['-itv', '--quiet', 'init'], { input: cpio, encoding: 'utf8' });
  assert.match(listing, /^-rwxr-xr-x\s+1 root\s+root /, 'init is executable and owned by root');
});

test('the rootfs is an ext4 image with /sbin/init, /init and busybox applets', { skip: missingDeps(SPECS.rootfs.packages) }, async () => {
  const rootfs = await inTempCache(ensureRootfs);
  assert.match(execFileSync('file', ['-b', rootfs], { encoding: 'utf8' }), /ext4 filesystem data/);
  const debugfs = (cmd: string) => execFileSync('debugfs', ['-R', cmd, rootfs], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const sbin = debugfs('ls -l /sbin');
  assert.match(sbin, /\s100755 \(1\)\s+0\s+0\s+\d+\s.*\sinit\n/, '/sbin/init is a root-owned executable file');
  assert.match(sbin, /\sreboot\n/);
  assert.equal(debugfs('cat /sbin/init'), initText);
  assert.equal(debugfs('cat /init'), initText);
  for (const applet of ['sh', 'cat', 'dd', 'sync', 'mount']) {
    assert.match(debugfs(`stat /bin/${applet}`), /Type: symlink/, `/bin/${applet}`);
  }
  const fsck = spawnSync('e2fsck', ['-fn', rootfs]);
  assert.equal(fsck.status, 0, 'e2fsck finds the image clean');
});

test('a second request uses the cache', { skip: missingDeps(SPECS.rootfs.packages) }, async () => {
  const started = Date.now();
  const again = await inTempCache(ensureRootfs);
  assert.ok(existsSync(again));
  assert.ok(Date.now() - started < 1000, 'no rebuild');
});

function kernelSkip(): string | false {
  const missing = missingDeps(SPECS.kernel.packages);
  if (missing) return missing;
  const vmlinux = guestCachePaths().kernel.vmlinux;
  return existsSync(vmlinux) ? false : `the kernel is not built yet (${vmlinux}); run 'sparkler guest kernel' (a few minutes)`;
}

test('the cached kernel is an x86-64 ELF vmlinux plus a bzImage built from our fragment', { skip: kernelSkip() }, () => {
  const paths = guestCachePaths().kernel;
  const header = execFileSync('readelf', ['-h', paths.vmlinux], { encoding: 'utf8' });
  assert.match(header, /Class:\s+ELF64/);
  assert.match(header, /Type:\s+EXEC/);
  assert.match(header, /Machine:\s+Advanced Micro Devices X86-64/);
  assert.match(execFileSync('file', ['-b', paths.bzImage], { encoding: 'utf8' }), /Linux kernel x86 boot executable bzImage/);
  const check = spawnSync('sh', [path.join(guestDir(), 'kernel', 'check-fragment.sh'), path.join(guestDir(), 'kernel', 'microvm.config'), paths.config], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
});

function cli(args: string[], env: Record<string, string> = {}) {
  const script = `require(${JSON.stringify(path.join(__dirname, 'cli'))}).run(process.argv.slice(1)).then((c) => { process.exitCode = c; })`;
  return spawnSync(process.execPath, ['-e', script, '--', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
}

test('sparkler guest: help, usage errors and paths', () => {
  const help = cli(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /usage: sparkler guest/);
  assert.equal(cli(['bogus']).status, 2);
  assert.equal(cli(['initrd', '--bzimage']).status, 2);
  assert.equal(cli(['kernel', '--no-such-flag']).status, 2);
  assert.equal(cli([]).status, 2);
});

test('sparkler guest paths prints JSON under SPARKLER_CACHE and builds nothing', { skip: missingDeps([...SPECS.kernel.packages, ...SPECS.rootfs.packages, ...SPECS.initrd.packages]) }, () => {
  const root = mkdtempSync(path.join(tmpdir(), 'sparkler-paths-'));
  const r = cli(['paths'], { SPARKLER_CACHE: root });
  assert.equal(r.status, 0, r.stderr);
  const paths = JSON.parse(r.stdout);
  assert.equal(paths.root, root);
  assert.match(paths.kernel.vmlinux, new RegExp(`^${root}/kernel/[0-9a-f]{64}/vmlinux$`));
  assert.match(paths.initrd.initrd, /\/initrd\/[0-9a-f]{64}\/initrd\.cpio\.gz$/);
  assert.match(paths.rootfs.rootfs, /\/rootfs\/[0-9a-f]{64}\/rootfs\.ext4$/);
  assert.equal(existsSync(path.join(root, 'kernel')), false);
  rmSync(root, { recursive: true, force: true });
});
