/**
 * Trains the V8 code cache of the bundle at build time: one VMM run of a tiny guest through
 * bin/sparkler, with the API server and a config file both in use (so the cache holds what either
 * path compiles), one device of every registered kind attached, and the boot timer on. The launcher
 * writes the cache when that run ends cleanly.
 * Needs a usable /dev/kvm and the built addon; without them the first real VMM run trains it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { tinyKernel } from '../testing/tiny-guests';
import { kvmUnavailableReason } from '../testing/kvm-available';
import { VIRTIO_DEVICE_SPECS } from '../vmm/device-registry';
import { CODE_CACHE_FILE } from './launch';

/** A sentence saying what happened, for the build's output. */
export function trainCodeCache(distDir: string): string {
  const noKvm = kvmUnavailableReason();
  if (noKvm) return `not trained (${noKvm}); the first VMM run writes it`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-train-'));
  try {
    const kernel = path.join(dir, 'tiny.elf');
    fs.writeFileSync(kernel, tinyKernel());
    const vm: Record<string, unknown> = {
      'boot-source': { kernel_image_path: kernel, boot_args: 'reboot=k' },
      'machine-config': { vcpu_count: 1, mem_size_mib: 32 },
    };
    // Every kind of device too: their code loads only for VMs that have them (most do).
    for (const spec of VIRTIO_DEVICE_SPECS) {
      const s = spec.trainingSection?.(dir);
      if (s) vm[s.section] = s.value;
    }
    const config = path.join(dir, 'vm.json');
    fs.writeFileSync(config, JSON.stringify(vm));
    const bin = path.resolve(distDir, '..', 'bin', 'sparkler');
    const run = spawnSync(process.execPath, [bin, '--api-sock', path.join(dir, 'api.sock'), '--boot-timer', '--config-file', config],
      { stdio: 'pipe', timeout: 60_000, encoding: 'utf8' });
    const cache = path.join(distDir, CODE_CACHE_FILE);
    if (run.status !== 0 || !fs.existsSync(cache)) {
      return `not trained (the training run ended with ${run.status ?? run.signal}: ${(run.stderr || run.error?.message || '').trim().slice(0, 300)}); the first VMM run writes it`;
    }
    return `${(fs.statSync(cache).size / 1024).toFixed(0)} KiB -> ${path.relative(process.cwd(), cache)}`;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
