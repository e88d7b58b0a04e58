/**
 * Drives one bin/sparkler through its API where real Linux guests can boot (run by
 * api.e2e.test.ts, inside the emulated KVM host on a PVM machine): Firecracker's getting-started
 * sequence, then SendCtrlAltDel once the guest's init is up, then the exit code. Writes a JSON
 * report to the file named by argv[2]; argv[3] is the kernel, argv[4] the initrd.
 *
 *   node dist/e2e/api-driver.js REPORT KERNEL INITRD
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { request } from '../api/testing';
import { waitFor } from '../testing/wait';
import { BIN } from './harness';

export const READY_MARKER = 'READY-FOR-CTRL-ALT-DEL';

/** A directory where a Unix socket can be bound (9p shares cannot always hold one). */
export async function socketDir(): Promise<string> {
  for (const dir of ['/run', '/dev/shm', os.tmpdir()]) {
    const probe = path.join(dir, `sparkler-probe-${process.pid}.sock`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.createServer().once('error', () => resolve(false)).listen(probe, () => s.close(() => resolve(true)));
    });
    if (ok) return dir;
  }
  throw new Error('no directory here can hold a Unix socket');
}

async function main(): Promise<void> {
  const [report, kernel, initrd] = process.argv.slice(2);
  const steps: Record<string, unknown> = {};
  const sock = path.join(await socketDir(), `sparkler-cad-${process.pid}.sock`);
  const child = spawn(BIN, ['--api-sock', sock, '--id', 'cad-vm'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c) => { out += c; });
  child.stderr!.on('data', (c) => { out += c; });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await waitFor(() => /API server started\./.test(out), 'API server started', 30_000);
    const cmd = Buffer.from(`echo ${READY_MARKER}; sleep 600`).toString('base64');
    const bootArgs = `console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd sparkler.cmd=${cmd}`;
    const put = async (p: string, body: object) => (await request(sock, 'PUT', p, body)).status;
    steps.bootSource = await put('/boot-source', { kernel_image_path: kernel, initrd_path: initrd, boot_args: bootArgs });
    steps.machineConfig = await put('/machine-config', { vcpu_count: 2, mem_size_mib: 256 });
    steps.instanceStart = await put('/actions', { action_type: 'InstanceStart' });
    await waitFor(() => out.includes(READY_MARKER), 'the guest init', 120_000);
    steps.stateBefore = ((await request(sock, 'GET', '/')).json as { state: string }).state;
    steps.ctrlAltDel = await put('/actions', { action_type: 'SendCtrlAltDel' });
    steps.exitCode = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 60_000))]);
  } catch (err) {
    steps.error = (err as Error).message;
    child.kill('SIGKILL');
  }
  steps.output = out.slice(-6000);
  fs.writeFileSync(report, JSON.stringify(steps));
}

if (require.main === module) {
  main().then(() => process.exit(0), (err) => { process.stderr.write(`${err}\n`); process.exit(1); });
}
