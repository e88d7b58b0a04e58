/**
 * A snapshot-resume control plane (control-plane.ts) against bin/sparkler on the local /dev/kvm
 * with a tiny guest: one process boots a guest with a drive, pauses it and snapshots it; a fresh
 * process is restored from it through `sparkler uffd-handler` with resume_vm false, re-limited,
 * resumed and given new metadata, all timed; the guest then runs on. The same sequence with a
 * Linux guest is in src/e2e/orchestrators.e2e.test.ts.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { kvmUnavailableReason } from '../../testing/kvm-available';
import { tempDir } from '../../testing/temp-dir';
import { tinyKernel } from '../../testing/tiny-guests';
import { waitFor } from '../../testing/wait';
import { Proc, ReplayApi, SPARKLER, apiStarted, startProcess } from '../replay';
import { ResumeDevice, formatTimings, resumeFromSnapshot } from './control-plane';

const skip = kvmUnavailableReason();
/** Prints '.' on COM1 forever. */
const DOTS_FOREVER = Buffer.from('66baf803b02eeeb900040000ffc975fcebf2', 'hex');
const procs: Proc[] = [];
after(() => { for (const p of procs) p.child.kill('SIGKILL'); });

/** The devices of the snapshotted VM; an interface is one more line once net persists. */
const DEVICES: ResumeDevice[] = [
  { kind: 'drive', id: 'rootfs' },
];

test('snapshot-resume: load (Uffd, resume_vm false), PATCH limiters, PATCH /vm Resumed, PUT /mmds; timed; the guest runs on', { skip }, async (t) => {
  const dir = tempDir('sparkler-resume-');
  const kernel = path.join(dir, 'vmlinux');
  fs.writeFileSync(kernel, tinyKernel(DOTS_FOREVER));
  fs.writeFileSync(path.join(dir, 'rootfs.img'), Buffer.alloc(1 << 20));

  const a = startProcess(SPARKLER, ['--api-sock', path.join(dir, 'a.sock'), '--id', 'template']);
  procs.push(a);
  await apiStarted(a);
  const src = new ReplayApi(path.join(dir, 'a.sock'));
  await src.send('PUT', '/boot-source', { kernel_image_path: kernel, boot_args: 'console=ttyS0' });
  for (const d of DEVICES) {
    if (d.kind === 'drive') await src.send('PUT', `/drives/${d.id}`, { drive_id: d.id, path_on_host: path.join(dir, `${d.id}.img`), is_root_device: true, is_read_only: false });
  }
  await src.send('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 128 });
  await src.send('PUT', '/actions', { action_type: 'InstanceStart' });
  await waitFor(() => a.out().includes('....'), 'the template guest printing');
  await src.send('PATCH', '/vm', { state: 'Paused' });
  const snapshotPath = path.join(dir, 'vm.snap');
  const memFile = path.join(dir, 'vm.mem');
  await src.send('PUT', '/snapshot/create', { snapshot_type: 'Full', snapshot_path: snapshotPath, mem_file_path: memFile });
  assert.deepEqual(src.failures(), [], src.transcript());
  a.child.kill('SIGKILL');

  const uffdSocket = path.join(dir, 'uffd.sock');
  const handler = startProcess(SPARKLER, ['uffd-handler', '--mem-file', memFile, '--socket', uffdSocket]);
  procs.push(handler);
  await waitFor(() => handler.out().includes('listening'), 'the uffd handler');

  const spawnedAt = performance.now();
  const b = startProcess(SPARKLER, ['--api-sock', path.join(dir, 'b.sock'), '--id', 'tenant']);
  procs.push(b);
  await apiStarted(b);
  const spawnToApiMs = performance.now() - spawnedAt;
  const api = new ReplayApi(path.join(dir, 'b.sock'));
  const timings = await resumeFromSnapshot(api, { snapshotPath, uffdSocket, devices: DEVICES, metadata: { tenant: { id: 't-42' } } });
  t.diagnostic(`resume budget (tiny guest, local KVM): process spawn -> API ${spawnToApiMs.toFixed(0)} ms; ${formatTimings(timings)}`);

  assert.equal(((await api.send('GET', '/')).json as { state: string }).state, 'Running');
  assert.deepEqual((await api.send('GET', '/mmds')).json, { tenant: { id: 't-42' } });
  const drive = ((await api.send('GET', '/vm/config')).json as { drives: { drive_id: string; rate_limiter?: { bandwidth?: { size: number } } }[] }).drives.find((d) => d.drive_id === 'rootfs');
  assert.equal(drive?.rate_limiter?.bandwidth?.size, 64 << 20, 'the PATCHed limiter is the drive\'s configuration now');
  const before = b.out().split('.').length;
  await waitFor(() => b.out().split('.').length > before + 3, 'the restored guest printing on');
  // The control-plane sequence itself, before any guest work, stays well inside a second here.
  assert.ok(timings.totalMs < 1000, formatTimings(timings));
});
