/**
 * A snapshot-resume control plane (control-plane.ts) against bin/sparkler on the local /dev/kvm
 * with a tiny guest: one process boots a guest with a drive, an interface on a TAP and a vsock,
 * pauses it and snapshots it; a fresh process is restored from it through `sparkler uffd-handler`
 * with resume_vm false onto its own TAP and vsock socket (network_overrides, vsock_override),
 * re-limited, resumed and given new metadata, all timed; the guest then runs on. The same sequence with a
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
import { Proc, ReplayApi, SPARKLER, apiStarted, makeTap, startProcess } from '../replay';
import { ResumeDevice, formatTimings, resumeFromSnapshot } from './control-plane';

const skip = kvmUnavailableReason();
/** Prints '.' on COM1 forever. */
const DOTS_FOREVER = Buffer.from('66baf803b02eeeb900040000ffc975fcebf2', 'hex');
const procs: Proc[] = [];
const cleanups: (() => void)[] = [];
after(() => {
  for (const p of procs) p.child.kill('SIGKILL');
  for (const c of cleanups) c();
});

test('snapshot-resume: load (Uffd, resume_vm false, network_overrides, vsock_override), PATCH limiters, PATCH /vm Resumed, PUT /mmds; timed; the guest runs on', { skip }, async (t) => {
  const dir = tempDir('sparkler-resume-');
  // The template's TAP and the clone's: one each, as a platform gives every sandbox its own.
  const tapA = makeTap(`spkra${process.pid % 10000}`);
  const tapB = tapA && makeTap(`spkrb${process.pid % 10000}`);
  for (const tap of [tapA, tapB]) if (tap) cleanups.push(tap.remove);
  if (!tapB) t.diagnostic('no TAP could be made here (root and ip(8) needed): the VM has no interface');
  const DEVICES: ResumeDevice[] = [{ kind: 'drive', id: 'rootfs' }, ...(tapB ? [{ kind: 'iface', id: 'eth0' } as const] : [])];
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
    else await src.send('PUT', `/network-interfaces/${d.id}`, { iface_id: d.id, host_dev_name: tapA!.name, guest_mac: '06:00:ac:10:00:02' });
  }
  await src.send('PUT', '/vsock', { guest_cid: 3, uds_path: path.join(dir, 'template-v.sock') });
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
  const tenantVsock = path.join(dir, 'tenant-v.sock');
  const taps = tapB ? { eth0: tapB.name } : undefined;
  const timings = await resumeFromSnapshot(api, { snapshotPath, uffdSocket, devices: DEVICES, metadata: { tenant: { id: 't-42' } }, taps, vsockUds: tenantVsock });
  t.diagnostic(`resume budget (tiny guest, local KVM, ${DEVICES.map((d) => d.kind).join(' + ')} + vsock): process spawn -> API ${spawnToApiMs.toFixed(0)} ms; ${formatTimings(timings)}`);

  assert.equal(((await api.send('GET', '/')).json as { state: string }).state, 'Running');
  assert.deepEqual((await api.send('GET', '/mmds')).json, { tenant: { id: 't-42' } });
  const config = (await api.send('GET', '/vm/config')).json as VmConfigWire;
  const drive = config.drives.find((d) => d.drive_id === 'rootfs');
  assert.equal(drive?.rate_limiter?.bandwidth?.size, 64 << 20, 'the PATCHed limiter is the drive\'s configuration now');
  if (tapB) {
    const iface = config['network-interfaces'].find((i) => i.iface_id === 'eth0');
    assert.deepEqual([iface?.host_dev_name, iface?.guest_mac, iface?.rx_rate_limiter?.bandwidth?.size], [tapB.name, '06:00:ac:10:00:02', 64 << 20], JSON.stringify(config));
    // The clone holds its own TAP open, not the template's.
    assert.deepEqual(tapsHeld(b.child.pid!), [tapB.name]);
  }
  assert.equal(config.vsock?.uds_path, tenantVsock);
  assert.ok(fs.statSync(tenantVsock).isSocket(), 'the restored vsock listens on the vsock_override socket');
  const before = b.out().split('.').length;
  await waitFor(() => b.out().split('.').length > before + 3, 'the restored guest printing on');
  // The control-plane sequence itself, before any guest work, stays well inside a second here.
  assert.ok(timings.totalMs < 1000, formatTimings(timings));
});

type Limiter = { bandwidth?: { size: number } };
interface VmConfigWire {
  drives: { drive_id: string; rate_limiter?: Limiter }[];
  'network-interfaces': { iface_id: string; host_dev_name: string; guest_mac?: string; rx_rate_limiter?: Limiter }[];
  vsock?: { uds_path: string };
}

/** The TAP devices `pid` has attached (the `iff:` line of each /dev/net/tun descriptor's fdinfo). */
function tapsHeld(pid: number): string[] {
  return fs.readdirSync(`/proc/${pid}/fdinfo`).flatMap((fd) => {
    try { return [/^iff:\s*(\S+)/m.exec(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))?.[1]].filter((n): n is string => n !== undefined); } catch { return []; }
  });
}
