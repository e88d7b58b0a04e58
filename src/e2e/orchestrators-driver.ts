/**
 * The guest side of the orchestrator replays (src/compat/), run where Linux guests boot (by
 * orchestrators.e2e.test.ts, inside the emulated KVM host on a PVM machine). Three scenarios, one
 * after the other, each writing its part of the JSON report at argv[2]:
 *   kata:      Kata's non-jailed start (fc.go fcInit: --api-sock --config-file) with its config
 *              file (acpi=off, a read-only rootfs drive, drive_0..7 placeholders, hybrid vsock,
 *              logger/metrics FIFOs), GET / every 10 ms, the guest agent reached over the hybrid
 *              vsock, drive_0 hot-plugged by PATCH and read by the guest, then unplugged;
 *   gosdk:     go-sdk's default handler order (a drive, an interface on a TAP, a vsock) with
 *              InstanceStart, pause + snapshot; its snapshot path (load, File backend) in a fresh
 *              process; then the snapshot-resume control plane (Uffd, resume_vm false, limiters,
 *              Resumed, PUT /mmds, timed) in another; each restored VM on its own TAP and vsock
 *              socket (network_overrides, vsock_override): the guest pings the host over the new
 *              TAP and its agent answers on the new socket;
 *   flintlock: `--id --boot-timer --no-api --config-file --metadata` with an interface allowed to
 *              MMDS; the guest reads its cloud-init meta-data and user-data from MMDS.
 *
 *   node dist/e2e/orchestrators-driver.js REPORT KERNEL INITRD
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { request } from '../api/testing';
import { FifoReader, Proc, ReplayApi, SPARKLER, apiStarted, startProcess } from '../compat/replay';
import { KATA, kataFcConfig } from '../compat/kata/fc-config';
import { flintlockArgs, flintlockConfig, flintlockMetadata } from '../compat/flintlock/flintlock';
import { ResumeDevice, resumeFromSnapshot } from '../compat/snapshot-resume/control-plane';
import { AgentClient, AGENT_PORT, dialVsock } from '../sdk';
import { waitFor } from '../testing/wait';
import { progressReport } from './progress';

type Report = Record<string, unknown>;
const b64 = (s: string) => Buffer.from(s).toString('base64');
const BOOT = 'console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd';

function workDir(name: string): string {
  return fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), `sparkler-orch-${name}-`));
}

async function kata(kernel: string, initrd: string, procs: Proc[]): Promise<Report> {
  const r: Report = {};
  const dir = workDir('kata');
  const at = (n: string) => path.join(dir, n);
  fs.writeFileSync(at(KATA.rootfs), Buffer.alloc(1 << 20)); // the image: attached read-only, not as root
  for (let i = 0; i < KATA.diskPoolSize; i++) fs.writeFileSync(at(`drive_${i}`), ''); // createDiskPool
  const logs = new FifoReader(at(KATA.logFifo));
  const metrics = new FifoReader(at(KATA.metricsFifo));
  // Non-jailed Kata uses host paths; the same builder, rebased onto dir. Debug: console=ttyS0.
  // kernel_params from configuration-fc.toml: this guest kernel has the i8042 built in (Kata's
  // has none), and its probes cost tens of seconds under TCG.
  const config = kataFcConfig({ memMiB: 256, vcpus: 1, debug: true, kernelParams: ['i8042.noaux', 'i8042.nomux', 'i8042.dumbkbd'] }) as Record<string, any>;
  config['boot-source'] = { kernel_image_path: kernel, initrd_path: initrd, boot_args: `${config['boot-source'].boot_args} sparkler.agent=1` };
  for (const d of config.drives) d.path_on_host = at(d.path_on_host.slice(1));
  config.logger.log_path = logs.file;
  config.metrics.metrics_path = metrics.file;
  config.vsock.uds_path = at(KATA.hybridVsock);
  r.bootArgs = config['boot-source'].boot_args;
  fs.writeFileSync(at(KATA.config), JSON.stringify(config, null, '\t'));
  const sock = at(KATA.socket);
  const t0 = performance.now();
  const vmm = startProcess(SPARKLER, ['--api-sock', sock, '--config-file', at(KATA.config)]);
  procs.push(vmm);
  try {
    // waitVMMRunning: GET / every 10 ms.
    for (;;) {
      try {
        const res = await request(sock, 'GET', '/');
        if ((res.json as { state?: string } | undefined)?.state === 'Running') break;
      } catch { /* not yet */ }
      if (performance.now() - t0 > 10_000) throw new Error(`GET / did not say Running within fcTimeout (10 s):\n${vmm.out()}`);
      await new Promise((res) => setTimeout(res, 10));
    }
    r.runningMs = performance.now() - t0;
    fs.chmodSync(at(KATA.hybridVsock), 0o640);
    const agent = new AgentClient(() => dialVsock(at(KATA.hybridVsock), AGENT_PORT, 120_000));
    // Kata's agent client dials the hybrid vsock again until the agent listens (the guest is
    // still booting when GET / first says Running).
    for (;;) {
      try {
        r.agentVersion = await agent.ping();
        break;
      } catch (err) {
        if (performance.now() - t0 > 180_000) throw err;
        await new Promise((res) => setTimeout(res, 100));
      }
    }
    r.agentMs = performance.now() - t0;
    const acpi = await agent.exec(['sh', '-c', 'cat /proc/cmdline; ls /sys/firmware/acpi/tables 2>/dev/null | wc -l; cat /sys/block/vdb/size']);
    r.guestBefore = acpi.stdout.toString();
    // hotplugBlockDevice(AddDevice) -> fcUpdateBlockDrive: the container's disk in place of drive_0.
    const disk = at('container.img');
    fs.writeFileSync(disk, Buffer.concat([Buffer.from('KATA-HOTPLUG-OK\n'), Buffer.alloc((1 << 20) - 16)]));
    const api = new ReplayApi(sock);
    await api.send('PATCH', '/drives/drive_0', { drive_id: 'drive_0', path_on_host: disk });
    const read = await agent.exec(['sh', '-c', 'for i in $(seq 50); do [ "$(cat /sys/block/vdb/size)" != 0 ] && break; sleep 0.1; done; cat /sys/block/vdb/size; head -c 16 /dev/vdb']);
    r.hotplugged = read.stdout.toString();
    await api.send('PATCH', '/drives/drive_0', { drive_id: 'drive_0', path_on_host: at('drive_0') }); // RemoveDevice
    const back = await agent.exec(['sh', '-c', 'for i in $(seq 50); do [ "$(cat /sys/block/vdb/size)" = 0 ] && break; sleep 0.1; done; cat /sys/block/vdb/size']);
    r.unplugged = back.stdout.toString().trim();
    await api.send('PUT', '/actions', { action_type: 'FlushMetrics' });
    await waitFor(() => metrics.lines().length > 0, 'a metrics line on the FIFO', 10_000);
    r.metricsBlockReads = (JSON.parse(metrics.lines().at(-1)!) as { block?: { read_count?: number } }).block?.read_count;
    r.calls = api.transcript();
    r.failures = api.failures();
  } finally {
    r.console = vmm.out().slice(-2500);
    r.log = logs.text().slice(-1500);
    vmm.child.kill('SIGTERM');
    await vmm.exit;
    logs.close();
    metrics.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return r;
}

/** The go-sdk guest's network: the host end of each TAP is HOST_IP, with the same MAC every time. */
const HOST_IP = '172.16.11.1';
const HOST_MAC = '02:fc:00:00:0b:01';
const GUEST_NET = `ip=172.16.11.2::${HOST_IP}:255.255.255.0::eth0:off`;
/** Each tick says whether the guest reached the host over its interface. */
const TICKS = `i=0; while true; do echo TICK=$i NET=$(ping -c 1 -W 1 ${HOST_IP} >/dev/null 2>&1 && echo 1 || echo 0); i=$((i+1)); sleep 0.2; done`;
const lastTick = (out: string) => Math.max(-1, ...[...out.matchAll(/TICK=(\d+)(?=[ \r\n])/g)].map((m) => Number(m[1])));
/** Whether a tick after `after` reached the host. */
const netAfter = (out: string, after: number) => [...out.matchAll(/TICK=(\d+) NET=1\b/g)].some((m) => Number(m[1]) > after);

/** A TAP for one stage of the go-sdk scenario (the previous stage's is removed first: one host route). */
function hostTap(name: string): string {
  const made = spawnSync('sh', ['-c', `ip tuntap add dev ${name} mode tap && ip link set ${name} address ${HOST_MAC} && ip addr add ${HOST_IP}/24 dev ${name} && ip link set ${name} up`], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`could not make the TAP ${name}: ${made.stderr}`);
  return name;
}

/** Waits up to `ms` for `ok`; false when it did not come. */
async function seen(ok: () => boolean, ms: number): Promise<boolean> {
  try {
    await waitFor(ok, 'a condition', ms);
    return true;
  } catch {
    return false;
  }
}

/**
 * The guest agent's version over the vsock socket `uds`, on the first connection (no retry: the
 * first connection after a restore is the one a stale transport reset would kill), or the error.
 */
async function agentVersion(uds: string, r: Report, key: string): Promise<void> {
  try {
    r[key] = await new AgentClient(() => dialVsock(uds, AGENT_PORT, 30_000)).ping();
  } catch (err) {
    r[`${key}Error`] = String(err);
  }
}

async function gosdk(kernel: string, initrd: string, procs: Proc[]): Promise<Report> {
  const r: Report = {};
  const dir = workDir('gosdk');
  const at = (n: string) => path.join(dir, n);
  const start = async (name: string) => {
    const vmm = startProcess(SPARKLER, ['--api-sock', at(`${name}.sock`), '--id', name]);
    procs.push(vmm);
    await apiStarted(vmm);
    return { vmm, api: new ReplayApi(at(`${name}.sock`)) };
  };
  const tapBase = `spkgo${process.pid % 1000}`;
  const taps: string[] = [];
  const nextTap = () => {
    if (taps.length > 0) spawnSync('ip', ['link', 'del', taps.at(-1)!]);
    taps.push(hostTap(`${tapBase}${String.fromCharCode(97 + taps.length)}`));
    return taps.at(-1)!;
  };
  try {
    // defaultFcInitHandlerList with InstanceStart: a drive, an interface, a vsock.
    const DEVICES: ResumeDevice[] = [{ kind: 'drive', id: '1' }, { kind: 'iface', id: '1' }];
    const a = await start('gosdk-a');
    const log = new FifoReader(at('log.fifo'));
    const metrics = new FifoReader(at('metrics.fifo'));
    await a.api.send('PUT', '/logger', { log_path: log.file, level: 'Debug', show_level: true, show_log_origin: false });
    await a.api.send('PUT', '/metrics', { metrics_path: metrics.file });
    await a.api.send('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 128, smt: false });
    await a.api.send('GET', '/machine-config');
    await a.api.send('PUT', '/boot-source', { kernel_image_path: kernel, initrd_path: initrd, boot_args: `${BOOT} ${GUEST_NET} sparkler.cmd=${b64(TICKS)}` });
    fs.writeFileSync(at('root.img'), Buffer.alloc(1 << 20));
    await a.api.send('PUT', '/drives/1', { drive_id: '1', path_on_host: at('root.img'), is_root_device: false, is_read_only: false });
    await a.api.send('PUT', '/network-interfaces/1', { iface_id: '1', guest_mac: '06:00:ac:10:0b:02', host_dev_name: nextTap() });
    await a.api.send('PUT', '/vsock', { vsock_id: 'vsock0', guest_cid: 3, uds_path: at('v-a.sock') });
    await a.api.send('PUT', '/mmds', { latest: { 'instance-id': 'i-a' } });
    await a.api.send('PUT', '/actions', { action_type: 'InstanceStart' });
    await waitFor(() => lastTick(a.vmm.out()) >= 3, 'the guest ticking', 180_000).catch((err) => {
      throw Object.assign(err, { detail: { callsA: a.api.transcript(), logA: log.text().slice(-4000) } });
    });
    r.netA = await seen(() => netAfter(a.vmm.out(), -1), 30_000);
    // The vsock is not used before the snapshot: the restored guest's first connection is the agent's.
    await a.api.send('PATCH', '/vm', { state: 'Paused' });
    await a.api.send('PUT', '/snapshot/create', { snapshot_type: 'Full', snapshot_path: at('vm.snap'), mem_file_path: at('vm.mem') });
    r.tickAtSnapshot = lastTick(a.vmm.out());
    r.callsA = a.api.transcript();
    r.failuresA = a.api.failures();
    a.vmm.child.kill('SIGKILL');
    log.close();
    metrics.close();

    // loadSnapshotHandlerList: StartVMM, logger, LoadSnapshot (File, resume_vm true).
    // Its own TAP and vsock socket, as a platform gives a clone (network_overrides, vsock_override).
    const b = await start('gosdk-b');
    const logB = new FifoReader(at('log-b.fifo'));
    await b.api.send('PUT', '/logger', { log_path: logB.file, level: 'Info', show_level: true, show_log_origin: false });
    await b.api.send('PUT', '/snapshot/load', { snapshot_path: at('vm.snap'), mem_backend: { backend_type: 'File', backend_path: at('vm.mem') }, enable_diff_snapshots: false, resume_vm: true,
      network_overrides: [{ iface_id: '1', host_dev_name: nextTap() }], vsock_override: { uds_path: at('v-b.sock') } });
    await waitFor(() => lastTick(b.vmm.out()) >= Number(r.tickAtSnapshot) + 1, 'the loaded guest ticking on', 120_000);
    r.firstTickB = Number(/TICK=(\d+)/.exec(b.vmm.out())?.[1]);
    r.netB = await seen(() => netAfter(b.vmm.out(), Number(r.tickAtSnapshot)), 30_000);
    await agentVersion(at('v-b.sock'), r, 'agentB');
    r.failuresB = b.api.failures();
    r.outputB = b.vmm.out().slice(-800);
    r.logB = logB.text().slice(-1500);
    b.vmm.child.kill('SIGKILL');
    logB.close();

    // The snapshot-resume control plane on a third process, pages served by uffd-handler.
    const handler = startProcess(SPARKLER, ['uffd-handler', '--mem-file', at('vm.mem'), '--socket', at('uffd.sock')]);
    procs.push(handler);
    await waitFor(() => handler.out().includes('listening'), 'the uffd handler', 30_000);
    const spawned = performance.now();
    const c = await start('gosdk-c');
    r.spawnToApiMs = performance.now() - spawned;
    const tapC = nextTap();
    r.resume = await resumeFromSnapshot(c.api, { snapshotPath: at('vm.snap'), uffdSocket: at('uffd.sock'), devices: DEVICES, metadata: { latest: { 'instance-id': 'i-c' } }, taps: { 1: tapC }, vsockUds: at('v-c.sock') });
    const tResumed = performance.now();
    await waitFor(() => lastTick(c.vmm.out()) >= Number(r.tickAtSnapshot) + 1, 'the resumed guest ticking on', 120_000);
    r.resumeToFirstTickMs = performance.now() - tResumed;
    r.firstTickC = Number(/TICK=(\d+)/.exec(c.vmm.out())?.[1]);
    r.netC = await seen(() => netAfter(c.vmm.out(), Number(r.tickAtSnapshot)), 30_000);
    await agentVersion(at('v-c.sock'), r, 'agentC');
    r.mmdsC = (await c.api.send('GET', '/mmds')).json;
    r.outputC = c.vmm.out().slice(-1000);
    c.vmm.child.kill('SIGKILL');
    handler.child.kill('SIGKILL');
  } finally {
    for (const tap of taps) spawnSync('ip', ['link', 'del', tap]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return r;
}

async function flintlock(kernel: string, initrd: string, procs: Proc[]): Promise<Report> {
  const r: Report = {};
  const dir = workDir('flintlock');
  const at = (n: string) => path.join(dir, n);
  const tap = `spkfl${process.pid % 10000}`;
  const made = spawnSync('sh', ['-c', `ip tuntap add dev ${tap} mode tap && ip link set ${tap} up`], { encoding: 'utf8' });
  if (made.status !== 0) return { skipped: `no TAP: ${made.stderr}` };
  try {
    const guest = [
      'ip route add 169.254.169.254 dev eth0',
      "echo MD=$(printf 'GET /latest/meta-data HTTP/1.1\\r\\n\\r\\n' | timeout 5 nc 169.254.169.254 80 | tail -n 1)",
      "echo UD=$(printf 'GET /latest/user-data HTTP/1.1\\r\\n\\r\\n' | timeout 5 nc 169.254.169.254 80 | tail -n 1)",
    ].join('; ');
    const cmdline = `${BOOT} ip=172.16.9.2::172.16.9.1:255.255.255.0::eth0:off ds=nocloud-net;s=http://169.254.169.254/latest/ sparkler.cmd=${b64(guest)}`;
    fs.writeFileSync(at('root.img'), Buffer.alloc(1 << 20));
    for (const f of ['firecracker.log', 'firecracker.metrics']) fs.writeFileSync(at(f), ''); // ensureState
    fs.writeFileSync(at('firecracker.cfg'), JSON.stringify(flintlockConfig({
      vcpus: 1, memMiB: 256, kernel, initrd, cmdline, rootVolume: at('root.img'),
      iface: { guestDeviceName: 'eth0', hostDevName: tap, mac: '02:f1:00:00:00:01' },
      logPath: at('firecracker.log'), metricsPath: at('firecracker.metrics'),
    })));
    fs.writeFileSync(at('metadata.json'), JSON.stringify(flintlockMetadata({ 'meta-data': 'instance-id-flintlock-1', 'user-data': 'cloud-config-runcmd-42' })));
    const t0 = performance.now();
    const vmm = startProcess(SPARKLER, flintlockArgs('01HZX4M6Q8E2J0RYV5T1C9B3KD', at('firecracker.cfg'), at('metadata.json')));
    procs.push(vmm);
    r.code = await vmm.exit;
    r.ms = performance.now() - t0;
    r.out = vmm.out().slice(-2500);
    r.log = fs.readFileSync(at('firecracker.log'), 'utf8').slice(-2000);
  } finally {
    spawnSync('ip', ['link', 'del', tap]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return r;
}

/**
 * A scenario takes 10-30 s in the emulated host. One that runs far past that has a guest that
 * stopped (seen: flintlock's VMM never exiting, with nothing in the log to say why): it ends
 * with `stalled` and its processes' last output in the report, which runReportDriver takes as
 * a fault of the emulated host's and reruns, instead of the attempt waiting out its limit.
 */
const SCENARIO_LIMIT_MS = 150_000;

async function main(): Promise<void> {
  const [file, kernel, initrd] = process.argv.slice(2);
  const report = progressReport<Report>();
  const save = () => fs.writeFileSync(file, JSON.stringify(report, null, 1));
  const scenario = async (name: string, run: (k: string, i: string, procs: Proc[]) => Promise<Report>) => {
    const procs: Proc[] = [];
    const t0 = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`the ${name} scenario ran past ${SCENARIO_LIMIT_MS / 1000} s`), { detail: { stalled: true } })), SCENARIO_LIMIT_MS);
    });
    try {
      report[name] = await Promise.race([run(kernel, initrd, procs), stalled]);
    } catch (err) {
      // Each process's last output says where it stood (a guest that stopped printing, a VMM error).
      report[name] = { error: (err as Error).stack ?? String(err), outputs: procs.map((p) => p.out().slice(-2500)), ...(err as { detail?: Report }).detail };
    } finally {
      clearTimeout(timer);
    }
    report[name].scenarioMs = performance.now() - t0;
    for (const p of procs) p.child.kill('SIGKILL');
    save();
  };
  // One scenario at a time: run two at once (a 1-vCPU guest on each of the emulated host's two
  // CPUs), nested guests triple-faulted or stopped in early boot in most attempts of an afternoon
  // (9 of 11 attempts in three CI runs and six local ones), against none in six of flintlock alone.
  const only = process.env.ORCHESTRATORS_ONLY; // one scenario, when chasing a failure
  for (const [name, run] of [['kata', kata], ['flintlock', flintlock], ['gosdk', gosdk]] as const) {
    if (!only || only === name) await scenario(name, run);
  }
}

if (require.main === module) {
  main().then(() => process.exit(0), (err) => { process.stderr.write(`${err}\n`); process.exit(1); });
}
