/** The warm pool: atomic claims, refilling, and real VMM processes handed out over their API. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { request } from '../api/testing';
import { kvmUnavailableReason } from '../testing/kvm-available';
import { tempDir } from '../testing/temp-dir';
import { tinyKernel } from '../testing/tiny-guests';
import { claimVmm, claimVmmWaiting, PoolEmptyError } from './claim';
import { listSlots, preparePoolDir, slotPath } from './layout';
import { WarmPool } from './pool';

test('each idle socket is claimed exactly once; an empty pool says so', async () => {
  const dir = tempDir('sparkler-pool-');
  preparePoolDir(dir);
  for (const id of ['a', 'b', 'c']) fs.writeFileSync(slotPath(dir, 'idle', id), '');
  const claimed = [claimVmm(dir), claimVmm(dir), claimVmm(dir)].map((c) => c.id);
  assert.deepEqual(claimed, ['a', 'b', 'c']);
  assert.deepEqual(listSlots(dir, 'claimed'), ['a', 'b', 'c']);
  assert.throws(() => claimVmm(dir), (e: Error & { code?: string }) => e instanceof PoolEmptyError && e.code === 'EPOOLEMPTY');
  await assert.rejects(claimVmmWaiting(dir, 30), PoolEmptyError);
});

test('a pool of real VMMs: claim one, it answers the Firecracker API and boots; the pool refills', { timeout: 60_000 }, async () => {
  const dir = tempDir('sparkler-pool-');
  const pool = new WarmPool({ dir, size: 2 });
  try {
    await pool.start();
    assert.equal(listSlots(dir, 'idle').length, 2);
    const t0 = process.hrtime.bigint();
    const vmm = claimVmm(dir);
    const info = await request(vmm.socketPath, 'GET', '/');
    const claimToAnswerMs = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.equal(info.status, 200);
    assert.equal((info.json as { id: string; state: string }).id, vmm.id);
    assert.equal((info.json as { state: string }).state, 'Not started');
    assert.ok(vmm.pid, 'the pool wrote the pid of each VMM it started');
    assert.ok(fs.readFileSync(`/proc/${vmm.pid}/cmdline`, 'utf8').includes(vmm.id), 'that pid is the claimed VMM');
    console.log(`# pool: claim -> GET / answered in ${claimToAnswerMs.toFixed(2)} ms`);
    await pool.waitIdle(2);
    assert.equal(pool.counts.claimed, 1);
    assert.equal(pool.counts.started, 3);

    if (!kvmUnavailableReason()) {
      const kernel = path.join(dir, 'tiny.elf');
      fs.writeFileSync(kernel, tinyKernel());
      assert.equal((await request(vmm.socketPath, 'PUT', '/boot-source', { kernel_image_path: kernel })).status, 204);
      const started = await request(vmm.socketPath, 'PUT', '/actions', { action_type: 'InstanceStart' });
      assert.equal(started.status, 204, started.text);
      // The tiny guest resets at once: the claimed VMM ends, and its socket goes.
      const deadline = Date.now() + 10_000;
      while (fs.existsSync(vmm.socketPath) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(fs.existsSync(vmm.socketPath), false);
    }
  } finally {
    pool.stop();
  }
  const deadline = Date.now() + 5000;
  while (listSlots(dir, 'idle').length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(listSlots(dir, 'idle').length, 0, 'stop ends the idle VMMs');
});

test('stop() spares a VMM claimed since the pool last looked, and ends the idle ones', async () => {
  const dir = tempDir('sparkler-pool-');
  const killed: string[] = [];
  const pool = new WarmPool({
    dir, size: 2, probe: async () => true,
    spawn: (_command, args) => {
      const id = args[args.indexOf('--id') + 1];
      const child = new EventEmitter() as EventEmitter & { kill: (s: string) => boolean; unref: () => void };
      child.kill = () => { killed.push(id); return true; };
      child.unref = () => {};
      fs.writeFileSync(args[args.indexOf('--api-sock') + 1], '');
      return child as unknown as ChildProcess;
    },
  });
  await pool.start();
  const claimed = claimVmm(dir);
  pool.stop(); // at once: no reconcile ran since the rename
  assert.equal(killed.length, 1);
  assert.notEqual(killed[0], claimed.id, 'the claimed VMM runs on');
  assert.equal(pool.counts.claimed, 1);
});
