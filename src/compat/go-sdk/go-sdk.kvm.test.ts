/**
 * firecracker-go-sdk (and firectl, which drives the VMM through it), replayed against bin/sparkler
 * on the local /dev/kvm with tiny guests: the default handler list (handlers.go
 * defaultFcInitHandlerList, each handler's call from machine.go), the calls the SDK wraps for a
 * running VM, and the snapshot path (loadSnapshotHandlerList). The jailer's arguments
 * (jailer.go JailerCommandBuilder.Args) are checked against the jailer's parser.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseJailerArgs } from '../../jailer/args';
import { kvmUnavailableReason } from '../../testing/kvm-available';
import { tempDir } from '../../testing/temp-dir';
import { tinyKernel } from '../../testing/tiny-guests';
import { waitFor } from '../../testing/wait';
import { FifoReader, ReplayApi, SPARKLER, makeTap as makeReplayTap, startProcess } from '../replay';

const kvmSkip = kvmUnavailableReason();
/** Prints '.' on COM1 forever. */
const DOTS_FOREVER = Buffer.from('66baf803b02eeeb900040000ffc975fcebf2', 'hex');
const dir = tempDir('sparkler-gosdk-');
const kernel = path.join(dir, 'vmlinux');
fs.writeFileSync(kernel, tinyKernel(DOTS_FOREVER));
const cleanups: (() => void)[] = [];
after(() => { for (const c of cleanups.reverse()) try { c(); } catch { /* best effort */ } });

/** A TAP for the interface handler: the SDK's CNI or static setup makes one before the VMM starts. */
function makeTap(name: string): string | undefined {
  const tap = makeReplayTap(name);
  if (tap) cleanups.push(tap.remove);
  return tap?.name;
}

/** startVMM -> waitForSocket: the socket file, then GET /machine-config, every 10 ms. */
async function startVmm(name: string) {
  const sock = path.join(dir, `${name}.sock`);
  const vmm = startProcess(SPARKLER, ['--api-sock', sock, '--id', name]);
  cleanups.push(() => vmm.child.kill('SIGKILL'));
  const api = new ReplayApi(sock);
  const t0 = performance.now();
  for (;;) {
    if (fs.existsSync(sock)) {
      try {
        if ((await api.send('GET', '/machine-config')).status === 200) break;
      } catch { /* not accepting yet */ }
    }
    if (performance.now() - t0 > 3000 || vmm.child.exitCode !== null) throw new Error(`no API socket at ${sock}:\n${vmm.out()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  api.calls.length = 0;
  return { vmm, api, sock };
}

test('go-sdk default handlers in order: logger+metrics on FIFOs, machine-config (read back), boot-source, drives, network-interfaces, vsock, mmds/config, mmds, balloon, InstanceStart', { skip: kvmSkip }, async (t) => {
  const { vmm, api } = await startVmm('gosdk');
  // CreateLogFilesHandler: mkfifo both after the VMM started; the log FIFO is read (FifoLogWriter).
  const log = new FifoReader(path.join(dir, 'log.fifo'));
  const metrics = new FifoReader(path.join(dir, 'metrics.fifo'));
  cleanups.push(() => { log.close(); metrics.close(); });
  // BootstrapLoggingHandler: setupLogging, setupMetrics.
  await api.send('PUT', '/logger', { log_path: log.file, level: 'Debug', show_level: true, show_log_origin: false });
  await api.send('PUT', '/metrics', { metrics_path: metrics.file });
  // CreateMachineHandler: createMachine, then refreshMachineConfiguration.
  await api.send('PUT', '/machine-config', { vcpu_count: 2, mem_size_mib: 128, smt: false, track_dirty_pages: true });
  const mc = (await api.send('GET', '/machine-config')).json as Record<string, unknown>;
  assert.deepEqual([mc.vcpu_count, mc.mem_size_mib, mc.smt, mc.track_dirty_pages], [2, 128, false, true]);
  // CreateBootSourceHandler (initrd_path omitted when empty: omitempty).
  await api.send('PUT', '/boot-source', { kernel_image_path: kernel, boot_args: 'ro console=ttyS0 noapic reboot=k panic=1 pci=off nomodules' });
  // AttachDrivesHandler, with firectl's drives (firectl options.go getBlockDevices): the
  // --add-drive ones ("2", "3", ...) first, the root drive "1" appended last.
  const root = path.join(dir, 'root.img');
  const extra = path.join(dir, 'extra.img');
  fs.writeFileSync(root, Buffer.alloc(1 << 20));
  fs.writeFileSync(extra, Buffer.alloc(1 << 20));
  await api.send('PUT', '/drives/2', { drive_id: '2', path_on_host: extra, is_root_device: false, is_read_only: true, cache_type: 'Unsafe', io_engine: 'Sync' });
  await api.send('PUT', '/drives/1', { drive_id: '1', path_on_host: root, is_root_device: true, is_read_only: false });
  // CreateNetworkInterfacesHandler: createNetworkInterface, iface id = its index + 1.
  const tap = makeTap(`spkgo${process.pid % 10000}`);
  if (tap) await api.send('PUT', '/network-interfaces/1', { iface_id: '1', guest_mac: '02:fc:00:00:00:05', host_dev_name: tap });
  else t.diagnostic('no TAP could be made here (root and ip(8) needed): the network-interface calls are skipped');
  // AddVsocksHandler: addVsock.
  await api.send('PUT', '/vsock', { vsock_id: 'vsock0', guest_cid: 3, uds_path: path.join(dir, 'v.sock') });
  // ConfigMmdsHandler: setMmdsConfig (the interfaces that allow MMDS), then NewSetMetadataHandler.
  if (tap) await api.send('PUT', '/mmds/config', { network_interfaces: ['1'], version: 'V2', ipv4_address: '169.254.169.254' });
  await api.send('PUT', '/mmds', { latest: { 'meta-data': { 'instance-id': 'i-gosdk' } } });
  // NewCreateBalloonHandler, appended by users after the default list.
  await api.send('PUT', '/balloon', { amount_mib: 0, deflate_on_oom: true, stats_polling_interval_s: 1 });
  // Machine.Start -> startInstance.
  await api.send('PUT', '/actions', { action_type: 'InstanceStart' });
  assert.deepEqual(api.failures(), [], api.transcript());

  // The calls the SDK wraps for a running VM.
  await api.send('GET', '/');
  await api.send('PATCH', '/vm', { state: 'Paused' }); // PauseVM
  const snap = path.join(dir, 'gosdk.snap');
  // CreateSnapshot (snapshot_type omitted: Full), of a VM with an interface, a vsock and a balloon.
  const mem = path.join(dir, 'gosdk.mem');
  const created = await api.send('PUT', '/snapshot/create', { mem_file_path: mem, snapshot_path: snap });
  assert.equal(created.status, 204, api.transcript());
  await api.send('PATCH', '/vm', { state: 'Resumed' }); // ResumeVM
  await api.send('PATCH', '/drives/2', { drive_id: '2', path_on_host: root }); // UpdateGuestDrive
  await api.send('PATCH', '/drives/2', { drive_id: '2', rate_limiter: { bandwidth: { size: 1 << 20, refill_time: 1000 } } }); // UpdateGuestDrive + WithDriveRateLimit opt
  if (tap) await api.send('PATCH', '/network-interfaces/1', { iface_id: '1', rx_rate_limiter: { bandwidth: { size: 1 << 20, refill_time: 100 } }, tx_rate_limiter: { ops: { size: 100, refill_time: 1000 } } }); // UpdateGuestNetworkInterfaceRateLimit
  await api.send('PATCH', '/mmds', { latest: { 'user-data': 'hello' } }); // UpdateMetadata
  const md = (await api.send('GET', '/mmds')).json; // GetMetadata
  assert.deepEqual(md, { latest: { 'meta-data': { 'instance-id': 'i-gosdk' }, 'user-data': 'hello' } });
  await api.send('PATCH', '/balloon', { amount_mib: 16 }); // UpdateBalloon
  await api.send('PATCH', '/balloon/statistics', { stats_polling_interval_s: 2 }); // UpdateBalloonStats
  await api.send('GET', '/balloon'); // GetBalloonConfig
  await api.send('GET', '/balloon/statistics'); // GetBalloonStats
  await api.send('GET', '/vm/config'); // GetExportVmConfig
  await api.send('GET', '/version'); // GetFirecrackerVersion
  await api.send('PUT', '/actions', { action_type: 'FlushMetrics' });
  // The root drive is the guest's first (vda) whatever the PUT order.
  const drives = ((await api.send('GET', '/vm/config')).json as { drives: { drive_id: string }[] }).drives.map((d) => d.drive_id);
  assert.deepEqual(drives, ['1', '2']);
  t.diagnostic(api.transcript().split('\n').filter((l) => !/ 20[04]$/.test(l)).join('; ') || 'every call answered 2xx');
  assert.deepEqual(api.failures(), [], api.transcript());

  // The log and metrics went to the SDK's FIFOs: show_level on, show_log_origin off.
  await waitFor(() => metrics.lines().length > 0, 'a metrics line', 10_000);
  assert.ok(metrics.lines().every((l) => typeof JSON.parse(l) === 'object'));
  assert.match(log.text(), /\[gosdk:[a-z_]+:(INFO|DEBUG|WARN)\] /);
  assert.doesNotMatch(log.text(), /\[gosdk:[a-z_]+:[A-Z]+:[^\]]+\.js:\d+\]/, 'no log origin');
  // Machine.Shutdown -> sendCtrlAltDel (the tiny guest ignores it; a Linux guest reboots), then StopVMM.
  assert.equal((await api.send('PUT', '/actions', { action_type: 'SendCtrlAltDel' })).status, 204, api.transcript());
  vmm.child.kill('SIGTERM'); // StopVMM
  assert.notEqual(await vmm.exit, null);

  // The snapshot loads back in a fresh process (loadSnapshotHandlerList), on the TAP the first
  // process let go of, with the vsock on a new socket.
  const b = await startVmm('gosdk-reload');
  const vsockB = path.join(dir, 'v-reload.sock');
  await b.api.send('PUT', '/snapshot/load', { snapshot_path: snap, mem_backend: { backend_type: 'File', backend_path: mem }, enable_diff_snapshots: false, resume_vm: true, vsock_override: { uds_path: vsockB } });
  assert.equal(((await b.api.send('GET', '/')).json as { state: string }).state, 'Running', b.api.transcript());
  const cfg = (await b.api.send('GET', '/vm/config')).json as { 'network-interfaces': { iface_id: string; host_dev_name: string }[]; vsock?: { uds_path: string }; balloon?: { amount_mib: number; stats_polling_interval_s: number } };
  assert.deepEqual(cfg['network-interfaces'].map((i) => `${i.iface_id}=${i.host_dev_name}`), tap ? [`1=${tap}`] : []);
  // The balloon as it was when paused (its PATCHes came after the snapshot).
  assert.deepEqual([cfg.vsock?.uds_path, cfg.balloon?.amount_mib, cfg.balloon?.stats_polling_interval_s], [vsockB, 0, 1]);
  assert.ok(fs.statSync(vsockB).isSocket(), 'the restored vsock listens on the vsock_override socket');
  assert.deepEqual(b.api.failures(), [], b.api.transcript());
  b.vmm.child.kill('SIGTERM');
  await b.vmm.exit;
});

test('go-sdk snapshot path: StartVMM, logger, PUT /snapshot/load {snapshot_path, mem_backend File, enable_diff_snapshots, resume_vm} instead of the configuration', { skip: kvmSkip }, async () => {
  // A snapshot to load, made by another process (the first test loads one with an interface and a vsock).
  const a = await startVmm('gosdk-src');
  const root = path.join(dir, 'snap-root.img');
  fs.writeFileSync(root, Buffer.alloc(1 << 20));
  await a.api.send('PUT', '/boot-source', { kernel_image_path: kernel, boot_args: 'console=ttyS0' });
  await a.api.send('PUT', '/drives/1', { drive_id: '1', path_on_host: root, is_root_device: true, is_read_only: false });
  await a.api.send('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 64 });
  await a.api.send('PUT', '/actions', { action_type: 'InstanceStart' });
  await a.api.send('PATCH', '/vm', { state: 'Paused' });
  const snap = path.join(dir, 'load.snap');
  const mem = path.join(dir, 'load.mem');
  await a.api.send('PUT', '/snapshot/create', { snapshot_type: 'Full', snapshot_path: snap, mem_file_path: mem });
  assert.deepEqual(a.api.failures(), [], a.api.transcript());
  a.vmm.child.kill('SIGKILL');

  // loadSnapshotHandlerList: SetupNetwork, StartVMM, CreateLogFiles, BootstrapLogging, LoadSnapshot, AddVsocks (none here).
  const b = await startVmm('gosdk-load');
  const log = new FifoReader(path.join(dir, 'load-log.fifo'));
  cleanups.push(() => log.close());
  await b.api.send('PUT', '/logger', { log_path: log.file, level: 'Info', show_level: true, show_log_origin: false });
  await b.api.send('PUT', '/snapshot/load', { snapshot_path: snap, mem_backend: { backend_type: 'File', backend_path: mem }, enable_diff_snapshots: false, resume_vm: true });
  const info = (await b.api.send('GET', '/')).json as { state: string };
  assert.equal(info.state, 'Running');
  assert.deepEqual(b.api.failures(), [], b.api.transcript());
  b.vmm.child.kill('SIGTERM');
  await b.vmm.exit;
});

test('go-sdk JailerCommandBuilder.Args (--id --uid --gid --exec-file [--cgroup cpuset.*] --chroot-base-dir --netns --daemonize -- <VMM args>) parse as the jailer means them', () => {
  const a = parseJailerArgs(['--id', 'vm-1', '--uid', '123', '--gid', '100', '--exec-file', SPARKLER,
    '--cgroup', 'cpuset.mems=0', '--cgroup', 'cpuset.cpus=0-1', '--chroot-base-dir', '/srv/jailer', '--netns', '/var/run/netns/vm-1', '--daemonize',
    '--', '--api-sock', '/run/firecracker.socket', '--config-file', 'cfg.json']);
  assert.deepEqual([a.id, a.uid, a.gid, a.execFile, a.chrootBaseDir, a.netns, a.daemonize], ['vm-1', 123, 100, SPARKLER, '/srv/jailer', '/var/run/netns/vm-1', true]);
  assert.deepEqual(a.cgroups.map((c) => `${c.file}=${c.value}`), ['cpuset.mems=0', 'cpuset.cpus=0-1']);
  assert.deepEqual(a.vmmArgs, ['--api-sock', '/run/firecracker.socket', '--config-file', 'cfg.json']);
  // Kata's fcInit adds --node 0 and no --cgroup.
  const k = parseJailerArgs(['--id', 'sandbox', '--node', '0', '--exec-file', SPARKLER, '--uid', '0', '--gid', '0', '--chroot-base-dir', '/run/kata', '--daemonize', '--', '--config-file', '/fcConfig.json']);
  assert.deepEqual([k.numaNode, k.daemonize, k.vmmArgs], [0, true, ['--config-file', '/fcConfig.json']]);
});
