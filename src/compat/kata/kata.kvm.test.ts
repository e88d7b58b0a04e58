/**
 * Kata Containers' Firecracker driver, replayed against bin/sparkler-jailer and bin/sparkler on
 * the local /dev/kvm with a tiny guest (src/runtime/virtcontainers/fc.go; functions named at each
 * step). Host side only: the guest side (the agent over hybrid vsock, acpi=off, a hotplugged
 * drive read by Linux) is in src/e2e/orchestrators.e2e.test.ts.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { request } from '../../api/testing';
import { kvmUnavailableReason } from '../../testing/kvm-available';
import { tempDir } from '../../testing/temp-dir';
import { tinyKernel } from '../../testing/tiny-guests';
import { waitFor } from '../../testing/wait';
import { FifoReader, JAILER, ReplayApi, SPARKLER, alive, startProcess, threadNames } from '../replay';
import { KATA, kataFcConfig, kataJailerArgs, kataPaths, revertBytes } from './fc-config';

const hasIp = spawnSync('sh', ['-c', 'command -v ip && command -v mount']).status === 0;
const skip = process.getuid?.() !== 0 ? 'Kata runs the jailer as root' : kvmUnavailableReason() ?? (hasIp ? undefined : 'ip(8) and mount(8) are needed');

/** Prints '.' on COM1 forever (a guest that stays up while the driver works on it). */
const DOTS_FOREVER = Buffer.from('66baf803b02eeeb900040000ffc975fcebf2', 'hex');

const sh = (cmd: string) => {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
  return r.stdout;
};

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups.reverse()) {
    try { c(); } catch { /* best effort */ }
  }
});

/** fcJailResource: bind-mounts src at <jailerRoot>/<dst> (a slave mount) and returns the jail's path. */
function jailResource(jailerRoot: string, src: string, dst: string): string {
  const target = path.join(jailerRoot, dst);
  if (!fs.existsSync(target)) fs.writeFileSync(target, '');
  sh(`mount --bind '${src}' '${target}' && mount --make-slave '${target}'`);
  cleanups.push(() => sh(`umount -l '${target}'`));
  return `/${dst}`;
}

/** The inode of the file behind each of pid's fds. */
function openInodes(pid: number): Set<number> {
  const out = new Set<number>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try { out.add(fs.statSync(`/proc/${pid}/fd/${fd}`).ino); } catch { /* closed meanwhile */ }
  }
  return out;
}

test('Kata: jailer --id --node 0 --exec-file --uid --gid --chroot-base-dir --daemonize --netns -- --config-file; GET / polled every 10 ms; fc_vcpu threads; PATCH drive_N hotplug and back; SIGTERM', { skip }, async (t) => {
  const chrootBase = tempDir('sparkler-kata-');
  fs.chmodSync(chrootBase, 0o755);
  const id = `kata${process.pid}`.slice(0, 32); // truncateID
  const { vmPath, jailerRoot, socketPath, hybridSocketPath } = kataPaths(chrootBase, SPARKLER, id);
  const assets = tempDir('sparkler-kata-assets-');

  // fcInitConfiguration: <jailerRoot>/run, then the jailer root bind-mounted on itself (shared).
  fs.mkdirSync(path.join(jailerRoot, 'run'), { recursive: true, mode: 0o750 });
  sh(`mount --bind '${jailerRoot}' '${jailerRoot}' && mount --make-shared '${jailerRoot}'`);
  cleanups.push(() => sh(`umount -l '${jailerRoot}'`));
  // --node 0 puts the VMM in cpuset <root>/sparkler/<id> (this test's own cpuset is the root).
  cleanups.push(() => {
    // The cgroup stays busy for a moment after its last task ended: retry for up to 3 s.
    const deadline = Date.now() + 3000;
    for (const d of [`/sys/fs/cgroup/cpuset/sparkler/${id}`, '/sys/fs/cgroup/cpuset/sparkler']) {
      for (;;) {
        try { fs.rmdirSync(d); break; } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT' || code === 'ENOTEMPTY' || Date.now() > deadline) break; // gone, or another jail's parent
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
        }
      }
    }
  });

  fs.writeFileSync(path.join(assets, 'vmlinux'), tinyKernel(DOTS_FOREVER));
  fs.writeFileSync(path.join(assets, 'rootfs.img'), Buffer.alloc(1 << 20));
  jailResource(jailerRoot, path.join(assets, 'vmlinux'), KATA.kernel); // fcSetBootSource
  jailResource(jailerRoot, path.join(assets, 'rootfs.img'), KATA.rootfs); // fcSetVMRootfs
  for (let i = 0; i < KATA.diskPoolSize; i++) fs.writeFileSync(path.join(jailerRoot, `drive_${i}`), ''); // createDiskPool -> createJailedDrive
  // fcSetLogger / fcSetMetrics -> fcListenToFifo: the FIFO in vmPath, open for reading, then jailed.
  const logs = new FifoReader(path.join(vmPath, KATA.logFifo));
  const metrics = new FifoReader(path.join(vmPath, KATA.metricsFifo));
  cleanups.push(() => { logs.close(); metrics.close(); });
  jailResource(jailerRoot, logs.file, KATA.logFifo);
  jailResource(jailerRoot, metrics.file, KATA.metricsFifo);

  // fcAddNetDevice: the endpoint's tap lives in the sandbox's network namespace.
  const netns = `spk-kata-${process.pid}`;
  sh(`ip netns add ${netns} && ip -n ${netns} tuntap add dev tap0_kata mode tap && ip -n ${netns} link set tap0_kata up`);
  cleanups.push(() => sh(`ip netns del ${netns}`));
  const config = kataFcConfig({ memMiB: 128, vcpus: 2, debug: false, net: { ifaceId: 'eth0', tap: 'tap0_kata', mac: '02:00:ca:fe:00:01', rxBits: 8_000_000, txBits: 0 } });
  fs.writeFileSync(path.join(vmPath, KATA.config), JSON.stringify(config, null, '\t'), { mode: 0o640 }); // StartVM
  const configInJail = jailResource(jailerRoot, path.join(vmPath, KATA.config), KATA.config);

  // fcInit: the version check first (getVersionNumber -> parseVersion -> checkVersion >= 0.21.1).
  const version = spawnSync(SPARKLER, ['--version'], { encoding: 'utf8' }).stdout;
  const fields = version.split('\n')[0].split(' ');
  const semver = fields[1]?.trim().replace(/^v/, '') ?? '';
  const [major, minor, patch] = semver.split(/[.-]/).map(Number);
  assert.ok(major > 0 || (major === 0 && (minor > 21 || (minor === 21 && patch >= 1))), `kata parses "${fields[1]}" from "${version.trim()}" and needs >= 0.21.1`);

  const jailer = startProcess(JAILER, kataJailerArgs({ id, hypervisorPath: SPARKLER, chrootBase, netns: `/var/run/netns/${netns}`, configInJail }));
  const t0 = performance.now();
  // waitVMMRunning: GET / every 10 ms until the instance runs, 10 s at most (fcTimeout).
  let info: { state?: string } = {};
  while (performance.now() - t0 < 10_000) {
    try {
      const r = await request(socketPath, 'GET', '/');
      info = r.json as { state?: string };
      if (r.status === 200 && info.state === 'Running') break;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 10));
  }
  const readyMs = performance.now() - t0;
  assert.equal(await jailer.exit, 0, `the jailer (--daemonize) exits 0 once the VMM runs:\n${jailer.out()}`);
  assert.equal(info.state, 'Running', `GET / within fcTimeout (10 s): ${JSON.stringify(info)}\n${jailer.out()}\nlog fifo:\n${logs.text()}`);
  t.diagnostic(`jailer start -> GET / says Running: ${readyMs.toFixed(0)} ms`);
  const pid = Number(fs.readFileSync(path.join(jailerRoot, 'sparkler.pid'), 'utf8'));
  cleanups.push(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } });

  // StartVM: chmod 0640 of the hybrid vsock socket straight after fcInit returns.
  fs.chmodSync(hybridSocketPath, 0o640);
  assert.ok(fs.statSync(hybridSocketPath).isSocket());

  // GetThreadIDs: threads named "fc_vcpu N", N parsed after the prefix.
  const vcpus = [...threadNames(pid).values()].filter((n) => n.startsWith('fc_vcpu')).map((n) => Number.parseInt(n.split('fc_vcpu')[1].trim(), 10)).sort();
  assert.deepEqual(vcpus, [0, 1]);

  // The config file as the VMM took it: Kata's rx limit (8 Mbit/s -> 1,000,000 B -> revertBytes)
  // and the empty tx limiter object (no limit).
  const api = new ReplayApi(socketPath);
  const vmConfig = (await api.send('GET', '/vm/config')).json as { 'network-interfaces': { rx_rate_limiter?: { bandwidth?: { size: number; refill_time: number } }; tx_rate_limiter?: object }[]; drives: unknown[] };
  const iface = vmConfig['network-interfaces'][0];
  assert.deepEqual([iface.rx_rate_limiter?.bandwidth?.size, iface.rx_rate_limiter?.bandwidth?.refill_time], [revertBytes(1_000_000), 1000]);
  assert.equal((iface.tx_rate_limiter as { bandwidth?: unknown } | undefined)?.bandwidth ?? null, null, 'no tx limit');
  assert.equal(vmConfig.drives.length, 1 + KATA.diskPoolSize);

  // The VMM writes its log and metrics into Kata's FIFOs (Kata parses each metrics line as JSON).
  await api.send('PUT', '/actions', { action_type: 'FlushMetrics' });
  await waitFor(() => metrics.lines().length > 0, 'a metrics line on the FIFO', 10_000);
  const line = JSON.parse(metrics.lines().at(-1)!) as Record<string, unknown>;
  assert.ok('block' in line && 'vcpu' in line, Object.keys(line).join(' '));

  // hotplugBlockDevice(AddDevice): the container's disk bind-mounted over the placeholder, then
  // PATCH /drives/drive_0 {drive_id, path_on_host} (fcUpdateBlockDrive).
  const disk = path.join(assets, 'container.img');
  fs.writeFileSync(disk, Buffer.alloc(4 << 20, 0x5a));
  const placeholderIno = fs.statSync(path.join(jailerRoot, 'drive_0')).ino;
  const target = path.join(jailerRoot, 'drive_0');
  sh(`mount --bind '${disk}' '${target}' && mount --make-slave '${target}'`);
  let mounted = true;
  cleanups.push(() => { if (mounted) sh(`umount -l '${target}'`); });
  await api.send('PATCH', '/drives/drive_0', { drive_id: 'drive_0', path_on_host: '/drive_0' });
  assert.ok(openInodes(pid).has(fs.statSync(disk).ino), `after the PATCH the VMM holds the container's disk (the bind mount reached the jail)\n${api.transcript()}`);

  // hotplugBlockDevice(RemoveDevice): umountResource, then PATCH back to the placeholder.
  sh(`umount -l '${target}'`); // umountResource: MNT_DETACH
  mounted = false;
  await api.send('PATCH', '/drives/drive_0', { drive_id: 'drive_0', path_on_host: '/drive_0' });
  const held = openInodes(pid);
  assert.ok(held.has(placeholderIno) && !held.has(fs.statSync(disk).ino), 'after the second PATCH the VMM holds the placeholder again');
  assert.deepEqual(api.failures(), [], api.transcript());

  // fcEnd: SIGTERM, then up to 15 s (fcStopSandboxTimeout) for the process to go.
  process.kill(pid, 'SIGTERM');
  await waitFor(() => !alive(pid), 'the VMM to exit after SIGTERM', 15_000);
  assert.doesNotMatch(logs.text(), /ERROR/, `the Error-level log stayed empty of errors:\n${logs.text()}`);
});
