/**
 * A pool of pre-jailed VMMs (root): each slot is the jailer execing bin/sparkler in its chroot;
 * the claimed slot is a symlink to the chroot's api.sock, the VMM runs as the jail's uid, a tiny
 * guest boots from a kernel placed in the chroot, and the pool removes the jails it never handed out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { request } from '../api/testing';
import { kvmUnavailableReason } from '../testing/kvm-available';
import { tempDir } from '../testing/temp-dir';
import { tinyKernel } from '../testing/tiny-guests';
import { claimVmm } from './claim';
import { listSlots } from './layout';
import { WarmPool } from './pool';

const UID = 1234;
const GID = 1235;
const skip = process.getuid?.() === 0 ? kvmUnavailableReason() : 'a jailed pool needs root';

function uidOf(pid: number): string | undefined {
  return /Uid:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
}

test('pre-jailed VMMs: claimed through a symlink into the chroot, run as the jail\'s uid, boot from the chroot; unclaimed jails are removed', { skip, timeout: 90_000 }, async () => {
  const dir = tempDir('sparkler-jailpool-');
  const base = tempDir('sparkler-jailpool-base-');
  fs.chmodSync(base, 0o755);
  const pool = new WarmPool({ dir, size: 1, jail: { uid: UID, gid: GID, chrootBaseDir: base }, startTimeoutMs: 30_000 });
  let jailRoot: string | undefined;
  try {
    await pool.start();
    const vmm = claimVmm(dir);
    jailRoot = vmm.jailRoot;
    assert.equal(jailRoot, path.join(base, 'sparkler', vmm.id, 'root'));
    assert.ok(fs.lstatSync(vmm.socketPath).isSymbolicLink());
    const info = await request(vmm.socketPath, 'GET', '/');
    assert.equal(info.status, 200, info.text);
    assert.equal((info.json as { id: string }).id, vmm.id);
    assert.ok(vmm.pid);
    assert.equal(uidOf(vmm.pid!), String(UID), 'the VMM dropped to the jail\'s uid');

    const kernel = path.join(jailRoot!, 'tiny.elf');
    fs.writeFileSync(kernel, tinyKernel());
    fs.chownSync(kernel, UID, GID);
    assert.equal((await request(vmm.socketPath, 'PUT', '/boot-source', { kernel_image_path: '/tiny.elf' })).status, 204);
    const started = await request(vmm.socketPath, 'PUT', '/actions', { action_type: 'InstanceStart' });
    assert.equal(started.status, 204, started.text);
    // The tiny guest resets at once: the claimed VMM ends; its jail stays for its client to remove.
    const deadline = Date.now() + 10_000;
    while (fs.existsSync(`/proc/${vmm.pid}/cmdline`) && fs.readFileSync(`/proc/${vmm.pid}/cmdline`, 'utf8') !== '' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(fs.existsSync(jailRoot!), 'a claimed VMM\'s jail is its client\'s');
    await pool.waitIdle(1, 30_000);
  } finally {
    pool.stop();
  }
  const idleJails = () => fs.readdirSync(path.join(base, 'sparkler')).filter((id) => path.join(base, 'sparkler', id, 'root') !== jailRoot);
  const deadline = Date.now() + 10_000;
  while ((idleJails().length > 0 || listSlots(dir, 'idle').length > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(idleJails(), [], 'the jails of VMMs never claimed are gone');
  fs.rmSync(path.dirname(jailRoot!), { recursive: true, force: true });
});

test('a pooled VMM must be the jailer\'s own process: --new-pid-ns and --daemonize are refused', () => {
  assert.throws(() => new WarmPool({ dir: '/nonexistent', size: 1, jail: { uid: 1, gid: 1, jailerArgs: ['--new-pid-ns'] } }), /--new-pid-ns and --daemonize are not allowed/);
});
