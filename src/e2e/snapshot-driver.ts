/**
 * Drives a snapshot round trip with a Linux guest where Linux guests can boot (run by
 * snapshot.e2e.test.ts, inside the emulated KVM host on a PVM machine): process A boots the
 * microVM kernel and initramfs with a guest printing TICK=n, pauses it, creates a Full snapshot
 * and is killed; a fresh process B loads the snapshot (File backend, resume_vm) and the guest
 * prints on from where it stopped, without booting again. Writes a JSON report to argv[2];
 * argv[3] is the kernel, argv[4] the initrd; with argv[5], a root drive image, the same again with
 * the guest on a copy of that drive and an entropy device, reading both on every tick. The initrd
 * guest is also restored through the Uffd backend, its pages served by `sparkler uffd-handler`.
 * The first initrd run has a vsock device too: the guest agent echoes before the snapshot and,
 * on a new connection to the vsock_override socket, after the restore; the guest reports the
 * VMGenID driver bound and one "virtual machine fork" reseed after the restore.
 *
 *   node dist/e2e/snapshot-driver.js REPORT KERNEL INITRD [ROOTFS]
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { request } from '../api/testing';
import { dialVsock } from '../sdk';
import { waitFor } from '../testing/wait';
import { BIN } from './harness';

interface Vmm { child: ChildProcess; sock: string; out: () => string; spawnedAt: number }

async function startVmm(name: string, dir: string): Promise<Vmm> {
  const sock = path.join(dir, `${name}.sock`);
  const spawnedAt = performance.now();
  const child = spawn(BIN, ['--api-sock', sock, '--id', name], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c) => { out += c; });
  child.stderr!.on('data', (c) => { out += c; });
  await waitFor(() => /API server started\./.test(out), `${name}: API server started`, 30_000);
  return { child, sock, out: () => out, spawnedAt };
}

// A tick counts only when its line goes on (a space or the line's end): the VMM's log lines share
// the stream, and one written into the middle of `TICK=5` would otherwise read as TICK=52026...
const TICK = /TICK=(\d+)(?=[ \r\n])/g;
const lastTick = (out: string): number => Math.max(-1, ...[...out.matchAll(TICK)].map((m) => Number(m[1])));

const BOOT_ARGS = 'console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd';
/** Each tick reads the root drive past the page cache and the hwrng: both devices work after a restore. */
const DEVICE_TICKS = 'echo persisted-42 >/persist.txt && sync && i=0; while true; do echo TICK=$i DISK=$(dd if=/dev/vda bs=512 count=1 iflag=direct 2>/dev/null | wc -c) RNG=$(head -c 8 /dev/hwrng | wc -c) FILE=$(cat /persist.txt); i=$((i+1)); sleep 0.2; done';

/**
 * With a vsock device: the guest agent echoes on port 5000, and each tick says how often the
 * kernel reseeded for a VM fork (VMGenID) and whether the vmgenid driver bound to VGEN.
 */
const VSOCK_TICKS = '/sbin/sparkler-agent -e -p 5000 </dev/null >/dev/null 2>&1 & i=0; while true; do'
  + ' echo TICK=$i FORK=$(dmesg | grep -c "crng reseeded due to virtual machine fork") GENDEV=$(ls /sys/bus/acpi/drivers/vmgenid 2>/dev/null | grep -c VMGENCTR)'
  + ' GED=$(awk \'/Ged/ { for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i } END { print s + 0 }\' /proc/interrupts) CRNG=$(dmesg | grep -c "crng init done");'
  + ' i=$((i+1)); sleep 0.2; done';

/** Sends `text` on a host-initiated vsock connection to guest port 5000 and reads the echo. */
async function vsockEcho(uds: string, text: string): Promise<string> {
  const { socket, head } = await dialVsock(uds, 5000);
  let got = head.toString('latin1');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no echo of ${JSON.stringify(text)} within 20 s (got ${JSON.stringify(got)})`)); }, 20_000);
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.length >= text.length) { clearTimeout(timer); socket.destroy(); resolve(got); }
    });
    socket.on('error', (e) => { clearTimeout(timer); reject(e); });
    socket.write(text);
  });
}

/**
 * initrd: the guest from the initramfs (with `vsock`, also a vsock device, restored with
 * vsock_override); rootfs: from a copy of the ext4 root drive, with an entropy device.
 */
async function scenario(kernel: string, initrd: string, rootfs?: string, uffd = false, vsock = false): Promise<Record<string, unknown>> {
  const steps: Record<string, unknown> = {};
  const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'sparkler-snap-e2e-'));
  const snapshot = path.join(dir, 'vm.snap');
  const mem = path.join(dir, 'vm.mem');
  let a: Vmm | undefined;
  let b: Vmm | undefined;
  let handler: ChildProcess | undefined;
  try {
    a = await startVmm('snap-a', dir);
    const ticks = rootfs ? DEVICE_TICKS : vsock ? VSOCK_TICKS : 'i=0; while true; do echo TICK=$i; i=$((i+1)); sleep 0.2; done';
    const bootArgs = `${BOOT_ARGS} sparkler.cmd=${Buffer.from(ticks).toString('base64')}`;
    const put = async (vmm: Vmm, method: string, p: string, body: object) => {
      const r = await request(vmm.sock, method, p, body);
      return r.status === 204 ? 204 : `${r.status} ${JSON.stringify(r.json)}`;
    };
    steps.bootSource = await put(a, 'PUT', '/boot-source', rootfs ? { kernel_image_path: kernel, boot_args: bootArgs } : { kernel_image_path: kernel, initrd_path: initrd, boot_args: bootArgs });
    if (rootfs) {
      const root = path.join(dir, 'root.ext4');
      fs.copyFileSync(rootfs, root);
      steps.drive = await put(a, 'PUT', '/drives/rootfs', { drive_id: 'rootfs', path_on_host: root, is_root_device: true, is_read_only: false });
      steps.entropy = await put(a, 'PUT', '/entropy', {});
    }
    if (vsock) {
      steps.vsock = await put(a, 'PUT', '/vsock', { guest_cid: 3, uds_path: path.join(dir, 'v.sock') });
      steps.entropy = await put(a, 'PUT', '/entropy', {}); // the hwrng readies the crng, which a fork reseed needs
    }
    steps.machineConfig = await put(a, 'PUT', '/machine-config', { vcpu_count: 2, mem_size_mib: 128 });
    steps.instanceStart = await put(a, 'PUT', '/actions', { action_type: 'InstanceStart' });
    await waitFor(() => lastTick(a!.out()) >= 5, 'the guest ticking', 180_000);
    if (vsock) {
      steps.echoBefore = await vsockEcho(path.join(dir, 'v.sock'), 'before the snapshot');
      // Left open across the snapshot: the restored guest must drop it (TRANSPORT_RESET) and still accept new ones.
      steps.heldOpen = (await dialVsock(path.join(dir, 'v.sock'), 5000)).socket.writable;
      steps.tickLineBefore = (a.out().match(/TICK=\d+ [^\n]*\n/g) ?? []).pop()?.trim();
    }
    steps.pause = await put(a, 'PATCH', '/vm', { state: 'Paused' });
    const t0 = performance.now();
    steps.create = await put(a, 'PUT', '/snapshot/create', { snapshot_type: 'Full', snapshot_path: snapshot, mem_file_path: mem });
    steps.createMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 300));
    steps.tickAtSnapshot = lastTick(a.out());
    a.child.kill('SIGKILL');
    steps.outputA = a.out().slice(-1500);

    let backend = { backend_type: 'File', backend_path: mem };
    if (uffd) {
      const socket = path.join(dir, 'uffd.sock');
      handler = spawn(BIN, ['uffd-handler', '--mem-file', mem, '--socket', socket], { stdio: ['ignore', 'pipe', 'pipe'] });
      let handlerOut = '';
      handler.stdout!.on('data', (c) => { handlerOut += c; });
      handler.stderr!.on('data', (c) => { handlerOut += c; });
      await waitFor(() => handlerOut.includes('listening'), 'the uffd handler', 30_000);
      backend = { backend_type: 'Uffd', backend_path: socket };
    }
    b = await startVmm('snap-b', dir);
    const t1 = performance.now();
    const overrides = vsock ? { vsock_override: { uds_path: path.join(dir, 'v2.sock') } } : {};
    steps.load = await put(b, 'PUT', '/snapshot/load', { snapshot_path: snapshot, mem_backend: backend, resume_vm: true, ...overrides });
    steps.loadAnsweredMs = performance.now() - t1;
    steps.spawnToLoadedMs = performance.now() - b.spawnedAt;
    steps.stateAfter = ((await request(b.sock, 'GET', '/')).json as { state: string }).state;
    const target = Number(steps.tickAtSnapshot) + 5;
    await waitFor(() => lastTick(b!.out()) >= target, `the restored guest ticking to ${target}`, 120_000);
    steps.firstTickAfter = Number(/TICK=(\d+)(?=[ \r\n])/.exec(b.out())?.[1]);
    steps.bootedAgain = /Linux version/.test(b.out());
    steps.loadLogged = /Snapshot loaded in ([\d.]+) ms/.exec(b.out())?.[1];
    if (vsock) {
      steps.echoAfter = await vsockEcho(path.join(dir, 'v2.sock'), 'after the restore');
      await new Promise((r) => setTimeout(r, 500)); // a tick after the reseed
    }
    // The last complete tick line (the one being printed may be cut).
    steps.lastTickLine = (b.out().match(/TICK=\d+ [^\n]*\n/g) ?? []).pop()?.trim();
  } catch (err) {
    steps.error = (err as Error).message;
  } finally {
    a?.child.kill('SIGKILL');
    b?.child.kill('SIGKILL');
    handler?.kill('SIGKILL');
    steps.outputB = b?.out().slice(-3000);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return steps;
}

async function main(): Promise<void> {
  const [report, kernel, initrd, rootfs] = process.argv.slice(2);
  const result: Record<string, unknown> = {};
  const run = async (name: string, steps: Promise<Record<string, unknown>>) => {
    const t = performance.now();
    result[name] = await steps;
    process.stderr.write(`snapshot-driver: ${name} done in ${((performance.now() - t) / 1000).toFixed(1)} s${result[name] && (result[name] as { error?: string }).error ? `: ${(result[name] as { error: string }).error}` : ''}\n`);
    // Written after each scenario: a run cut short still says how far it got.
    fs.writeFileSync(`${report}.partial`, JSON.stringify(result));
  };
  await run('initrd', scenario(kernel, initrd, undefined, false, true));
  await run('uffd', scenario(kernel, initrd, undefined, true));
  if (rootfs) await run('rootfs', scenario(kernel, initrd, rootfs));
  fs.writeFileSync(report, JSON.stringify(result));
}

if (require.main === module) {
  main().then(() => process.exit(0), (err) => { process.stderr.write(`${err}\n`); process.exit(1); });
}
