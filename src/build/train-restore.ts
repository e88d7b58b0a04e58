/**
 * The second half of the code cache's training (train-code-cache.ts trains the boot path): a
 * snapshot load, so that a fresh VMM's first PUT /snapshot/load runs compiled code instead of
 * compiling the restore path function by function as it goes. One VMM boots a tiny guest with
 * every kind of device (the boot training's sections), pauses and snapshots it; a second loads
 * the snapshot, resumes, and ends on SIGTERM (a clean stop, exit 0) with
 * SPARKLER_TRAIN_CODE_CACHE=1, which makes it rewrite the cache it was started with: the
 * functions it read from the cache and the ones the load compiled. Run as a script by the build
 * (a child, as the build is synchronous); prints one line.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { httpUnix, killAndWait, spawnTimed, vmmEnv, waitForSocket } from '../bench/proc';
import { tinyKernel } from '../testing/tiny-guests';
import { kvmUnavailableReason } from '../testing/kvm-available';
import { VIRTIO_DEVICE_SPECS } from '../vmm/device-registry';
import { CODE_CACHE_FILE } from './launch';

/** Spins on a byte in guest RAM that nothing sets: a guest that runs until it is stopped. */
const SPIN_GUEST = Buffer.from('bb00102000' + '803b00' + '74fb' + 'f4ebfd', 'hex');

async function put(sock: string, method: string, p: string, body: unknown): Promise<void> {
  const r = await httpUnix(sock, method, p, body);
  if (r.status !== 204) throw new Error(`${method} ${p} answered ${r.status}: ${r.body}`);
}

export async function trainRestore(distDir: string): Promise<string> {
  const noKvm = kvmUnavailableReason();
  if (noKvm) return `restore not trained (${noKvm})`;
  const cache = path.join(distDir, CODE_CACHE_FILE);
  if (!fs.existsSync(cache)) return 'restore not trained (no boot-trained cache to add to)';
  const bin = path.resolve(distDir, '..', 'bin', 'sparkler');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-train-restore-'));
  const at = (n: string) => path.join(dir, n);
  try {
    fs.writeFileSync(at('spin.elf'), tinyKernel(SPIN_GUEST));
    const vm: Record<string, unknown> = {
      'boot-source': { kernel_image_path: at('spin.elf'), boot_args: 'reboot=k' },
      'machine-config': { vcpu_count: 1, mem_size_mib: 32 },
    };
    for (const spec of VIRTIO_DEVICE_SPECS) {
      const s = spec.trainingSection?.(dir);
      if (s) vm[s.section] = s.value;
    }
    fs.writeFileSync(at('vm.json'), JSON.stringify(vm));
    const before = fs.statSync(cache).size;

    const source = spawnTimed(process.execPath, [bin, '--api-sock', at('a.sock'), '--config-file', at('vm.json')], { env: vmmEnv() });
    try {
      await waitForSocket(at('a.sock'), source, 20_000);
      await put(at('a.sock'), 'PATCH', '/vm', { state: 'Paused' });
      await put(at('a.sock'), 'PUT', '/snapshot/create', { snapshot_type: 'Full', snapshot_path: at('vm.snap'), mem_file_path: at('vm.mem') });
    } finally {
      await killAndWait(source);
    }
    // The source's sockets go with it; the loaded VM makes its own at the same paths.
    for (const name of fs.readdirSync(dir)) if (name.endsWith('.sock')) fs.rmSync(at(name), { force: true });

    const loaded = spawnTimed(process.execPath, [bin, '--api-sock', at('b.sock')], { env: vmmEnv({ SPARKLER_TRAIN_CODE_CACHE: '1' }) });
    try {
      await waitForSocket(at('b.sock'), loaded, 20_000);
      await put(at('b.sock'), 'PUT', '/snapshot/load', { snapshot_path: at('vm.snap'), mem_backend: { backend_type: 'File', backend_path: at('vm.mem') }, resume_vm: true });
      await put(at('b.sock'), 'PATCH', '/vm', { state: 'Paused' });
      await put(at('b.sock'), 'PATCH', '/vm', { state: 'Resumed' });
      loaded.child.kill('SIGTERM');
      const code = await loaded.exited;
      if (code !== 0) return `restore not trained (the loading VMM ended with ${code}: ${loaded.stderrTail().trim().slice(0, 300)})`;
    } finally {
      await killAndWait(loaded);
    }
    return `restore trained: ${(before / 1024).toFixed(0)} -> ${(fs.statSync(cache).size / 1024).toFixed(0)} KiB`;
  } catch (err) {
    return `restore not trained (${(err as Error).message})`;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  trainRestore(path.resolve(__dirname, '..')).then((line) => process.stdout.write(`${line}\n`), (err) => {
    process.stdout.write(`restore not trained (${(err as Error).message})\n`);
  });
}
