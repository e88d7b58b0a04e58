/**
 * `sparkler demo`: boots the default microVM (the project's microVM kernel and busybox
 * initramfs, 2 vCPUs, 128 MiB) with its serial console on the terminal. On a host whose KVM
 * cannot run a stock kernel at speed (PVM, or no KVM) it boots inside the emulated KVM host and
 * says so.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { detectKvmHost } from '../host/kvm-host';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'sparkler');
// `quiet`: every console byte is a VM exit, and under the emulated host the kernel's full log costs seconds.
export const DEFAULT_BOOT_ARGS = 'console=ttyS0 reboot=k panic=1 pci=off quiet i8042.noaux i8042.nomux i8042.dumbkbd';

export function defaultVmConfig(kernel: string, initrd: string): object {
  return {
    'boot-source': { kernel_image_path: kernel, initrd_path: initrd, boot_args: DEFAULT_BOOT_ARGS },
    'machine-config': { vcpu_count: 2, mem_size_mib: 128, smt: false },
  };
}

function runDirect(args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(BIN, args, { stdio: 'inherit' });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help')) {
    process.stdout.write('usage: sparkler demo\nBoots the default microVM (building its kernel and initramfs when missing).\n');
    return 0;
  }
  const { ensureKernel, ensureInitrd } = await import('../guest');
  const kernel = await ensureKernel();
  const initrd = await ensureInitrd();
  // /tmp is shared with the emulated host, so the config is visible there too.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-demo-'));
  const configFile = path.join(dir, 'vm.json');
  fs.writeFileSync(configFile, `${JSON.stringify(defaultVmConfig(kernel, initrd), null, 2)}\n`);
  const vmmArgs = ['--no-api', '--boot-timer', '--config-file', configFile];
  const host = detectKvmHost();
  process.stderr.write(`sparkler demo: ${host.summary}\n`);
  if (host.kind === 'hardware') return runDirect(vmmArgs);
  process.stderr.write('sparkler demo: booting inside the emulated KVM host (QEMU TCG with nested SVM); expect a few seconds of start-up.\n');
  const { runInEmuHost } = await import('../emuhost');
  const result = await runInEmuHost([BIN, ...vmmArgs], { stdio: 'inherit', timeoutMs: 10 * 60_000 });
  return result.code;
}
