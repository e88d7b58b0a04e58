/** MicroVM.start({ pool }): a VMM claimed from a real warm pool, driven, and ended by the SDK. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { listSlots, pidPath } from '../pool/layout';
import { WarmPool } from '../pool/pool';
import { kvmUnavailableReason } from '../testing/kvm-available';
import { tempDir } from '../testing/temp-dir';
import { tinyKernel } from '../testing/tiny-guests';
import { ApiCallError, SparklerSdkError } from './errors';
import { MicroVM } from './microvm';

const alive = (pid: number) => fs.existsSync(`/proc/${pid}`) && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8') !== '';

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return cond();
}

function idlePids(dir: string): number[] {
  return listSlots(dir, 'idle').map((id) => Number(fs.readFileSync(pidPath(dir, id), 'utf8')));
}

test('a start that fails on a pooled VMM ends that VMM, and the pool refills', { timeout: 60_000 }, async () => {
  const dir = tempDir('sparkler-sdk-pool-');
  const pool = new WarmPool({ dir, size: 1 });
  try {
    await pool.start();
    const [pid] = idlePids(dir);
    const initrd = path.join(dir, 'initrd');
    fs.writeFileSync(initrd, 'x');
    await assert.rejects(MicroVM.start({ pool: dir, kernel: path.join(dir, 'no-such-vmlinux'), initrd }),
      (e: unknown) => e instanceof ApiCallError && e.status === 400 && /no-such-vmlinux/.test(e.message));
    assert.ok(await waitFor(() => !alive(pid!), 5000), 'the claimed VMM was ended');
    await pool.waitIdle(1);
    assert.equal(pool.counts.claimed, 1);
    assert.equal(listSlots(dir, 'claimed').length, 0, 'its socket is gone');
  } finally {
    pool.stop();
  }
});

test('an empty pool is a clear error once poolWaitMs pass', async () => {
  const dir = tempDir('sparkler-sdk-pool-');
  await assert.rejects(MicroVM.start({ pool: dir, kernel: '/k', initrd: '/i', poolWaitMs: 50 }),
    (e: Error & { code?: string }) => e.code === 'EPOOLEMPTY' && e.message.includes(dir));
});

test('a pooled VMM boots: its console reaches onConsole through PUT /serial, and its end is seen', { timeout: 60_000, skip: kvmUnavailableReason() }, async () => {
  const dir = tempDir('sparkler-sdk-pool-');
  const pool = new WarmPool({ dir, size: 1 });
  try {
    await pool.start();
    const kernel = path.join(dir, 'tiny.elf');
    fs.writeFileSync(kernel, tinyKernel()); // prints OK on COM1, then resets: the VMM exits
    const initrd = path.join(dir, 'initrd');
    fs.writeFileSync(initrd, 'x');
    let console = '';
    await assert.rejects(MicroVM.start({ pool: dir, kernel, initrd, timeoutMs: 20_000, onConsole: (c) => { console += c.toString(); } }),
      (e: unknown) => e instanceof SparklerSdkError && e.code === 'EVMEXITED');
    assert.match(console, /OK/);
  } finally {
    pool.stop();
  }
});

test('from a pool of pre-jailed VMMs: the kernel is put in the chroot, the console FIFO is the jail uid\'s, and stop() removes the jail', {
  timeout: 90_000, skip: process.getuid?.() === 0 ? kvmUnavailableReason() : 'a jailed pool needs root',
}, async () => {
  const dir = tempDir('sparkler-sdk-jailpool-');
  const base = tempDir('sparkler-sdk-jailpool-base-');
  fs.chmodSync(base, 0o755);
  const pool = new WarmPool({ dir, size: 1, jail: { uid: 1234, gid: 1235, chrootBaseDir: base }, startTimeoutMs: 30_000 });
  try {
    await pool.start();
    const [id] = listSlots(dir, 'idle');
    const files = tempDir('sparkler-sdk-jailpool-files-');
    const kernel = path.join(files, 'tiny.elf');
    fs.writeFileSync(kernel, tinyKernel(), { mode: 0o644 });
    const initrd = path.join(files, 'initrd');
    fs.writeFileSync(initrd, 'x', { mode: 0o600 }); // not world-readable: copied and handed to the jail's uid
    let console = '';
    await assert.rejects(MicroVM.start({ pool: dir, kernel, initrd, timeoutMs: 20_000, onConsole: (c) => { console += c.toString(); } }),
      (e: unknown) => e instanceof SparklerSdkError && e.code === 'EVMEXITED');
    assert.match(console, /OK/, 'the guest\'s console came through the FIFO in the chroot');
    assert.equal(fs.existsSync(path.join(base, 'sparkler', id!)), false, 'stop() removed the claimed jail');
    assert.equal(fs.statSync(initrd).uid, 0, 'the caller\'s file kept its owner');
  } finally {
    pool.stop();
  }
});
