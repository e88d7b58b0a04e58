/**
 * Drives a snapshot round trip with a Linux guest where Linux guests can boot (run by
 * snapshot.e2e.test.ts, inside the emulated KVM host on a PVM machine): process A boots the
 * microVM kernel and initramfs with a guest printing TICK=n, pauses it, creates a Full snapshot
 * and is killed; a fresh process B loads the snapshot (File backend, resume_vm) and the guest
 * prints on from where it stopped, without booting again. Writes a JSON report to argv[2];
 * argv[3] is the kernel, argv[4] the initrd.
 *
 *   node dist/e2e/snapshot-driver.js REPORT KERNEL INITRD
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { request } from '../api/testing';
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

const lastTick = (out: string): number => Math.max(-1, ...[...out.matchAll(/TICK=(\d+)/g)].map((m) => Number(m[1])));

async function main(): Promise<void> {
  const [report, kernel, initrd] = process.argv.slice(2);
  const steps: Record<string, unknown> = {};
  const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'sparkler-snap-e2e-'));
  const snapshot = path.join(dir, 'vm.snap');
  const mem = path.join(dir, 'vm.mem');
  let a: Vmm | undefined;
  let b: Vmm | undefined;
  try {
    a = await startVmm('snap-a', dir);
    const cmd = Buffer.from('i=0; while true; do echo TICK=$i; i=$((i+1)); sleep 0.2; done').toString('base64');
    const bootArgs = `console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd sparkler.cmd=${cmd}`;
    const put = async (vmm: Vmm, method: string, p: string, body: object) => {
      const r = await request(vmm.sock, method, p, body);
      return r.status === 204 ? 204 : `${r.status} ${JSON.stringify(r.json)}`;
    };
    steps.bootSource = await put(a, 'PUT', '/boot-source', { kernel_image_path: kernel, initrd_path: initrd, boot_args: bootArgs });
    steps.machineConfig = await put(a, 'PUT', '/machine-config', { vcpu_count: 2, mem_size_mib: 128 });
    steps.instanceStart = await put(a, 'PUT', '/actions', { action_type: 'InstanceStart' });
    await waitFor(() => lastTick(a!.out()) >= 5, 'the guest ticking', 180_000);
    steps.pause = await put(a, 'PATCH', '/vm', { state: 'Paused' });
    const t0 = performance.now();
    steps.create = await put(a, 'PUT', '/snapshot/create', { snapshot_type: 'Full', snapshot_path: snapshot, mem_file_path: mem });
    steps.createMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 300));
    steps.tickAtSnapshot = lastTick(a.out());
    a.child.kill('SIGKILL');
    steps.outputA = a.out().slice(-1500);

    b = await startVmm('snap-b', dir);
    const t1 = performance.now();
    steps.load = await put(b, 'PUT', '/snapshot/load', { snapshot_path: snapshot, mem_backend: { backend_type: 'File', backend_path: mem }, resume_vm: true });
    steps.loadAnsweredMs = performance.now() - t1;
    steps.spawnToLoadedMs = performance.now() - b.spawnedAt;
    steps.stateAfter = ((await request(b.sock, 'GET', '/')).json as { state: string }).state;
    const target = Number(steps.tickAtSnapshot) + 5;
    await waitFor(() => lastTick(b!.out()) >= target, `the restored guest ticking to ${target}`, 120_000);
    steps.firstTickAfter = Number(/TICK=(\d+)/.exec(b.out())?.[1]);
    steps.bootedAgain = /Linux version/.test(b.out());
    steps.loadLogged = /Snapshot loaded in ([\d.]+) ms/.exec(b.out())?.[1];
  } catch (err) {
    steps.error = (err as Error).message;
  } finally {
    a?.child.kill('SIGKILL');
    b?.child.kill('SIGKILL');
    steps.outputB = b?.out().slice(-3000);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  fs.writeFileSync(report, JSON.stringify(steps));
}

if (require.main === module) {
  main().then(() => process.exit(0), (err) => { process.stderr.write(`${err}\n`); process.exit(1); });
}
