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
import { killAndWait, spawnTimed, vmmEnv, waitForSocket } from '../bench/proc';
import { FirecrackerClient } from '../sdk/firecracker-client';
import { FLAG_THEN_HALT_GUEST } from '../snapshot/clones-bench';
import { tinyKernel } from '../testing/tiny-guests';
import { kvmUnavailableReason } from '../testing/kvm-available';
import { VIRTIO_DEVICE_SPECS } from '../vmm/device-registry';
import { CODE_CACHE_FILE } from './launch';

export async function trainRestore(distDir: string): Promise<string> {
  const noKvm = kvmUnavailableReason();
  if (noKvm) return `restore not trained (${noKvm})`;
  const cache = path.join(distDir, CODE_CACHE_FILE);
  if (!fs.existsSync(cache)) return 'restore not trained (no boot-trained cache to add to)';
  const bin = path.resolve(distDir, '..', 'bin', 'sparkler');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-train-restore-'));
  const at = (n: string) => path.join(dir, n);
  try {
    // The clones bench's guest spins on a flag nothing sets here: it runs until it is stopped.
    fs.writeFileSync(at('spin.elf'), tinyKernel(FLAG_THEN_HALT_GUEST));
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
      const api = new FirecrackerClient(at('a.sock'));
      await api.pause();
      await api.createSnapshot({ snapshot_type: 'Full', snapshot_path: at('vm.snap'), mem_file_path: at('vm.mem') });
    } finally {
      await killAndWait(source);
    }
    // The source's sockets go with it; the loaded VM makes its own at the same paths.
    for (const name of fs.readdirSync(dir)) if (name.endsWith('.sock')) fs.rmSync(at(name), { force: true });

    const loaded = spawnTimed(process.execPath, [bin, '--api-sock', at('b.sock')], { env: vmmEnv({ SPARKLER_TRAIN_CODE_CACHE: '1' }) });
    try {
      await waitForSocket(at('b.sock'), loaded, 20_000);
      const api = new FirecrackerClient(at('b.sock'));
      await api.loadSnapshot({ snapshot_path: at('vm.snap'), mem_backend: { backend_type: 'File', backend_path: at('vm.mem') }, resume_vm: true });
      await api.pause();
      await api.resume();
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
