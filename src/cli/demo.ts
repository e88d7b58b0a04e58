/**
 * `sparkler demo`: boots the default microVM (the project's microVM kernel and busybox
 * initramfs, 2 vCPUs, 128 MiB) with its serial console on the terminal. `--debian` boots
 * Debian's cloud kernel with its initramfs instead (no kernel build; 256 MiB). On a host whose KVM
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

export function defaultVmConfig(kernel: string, initrd: string, memSizeMib = 128): object {
  return {
    'boot-source': { kernel_image_path: kernel, initrd_path: initrd, boot_args: DEFAULT_BOOT_ARGS },
    'machine-config': { vcpu_count: 2, mem_size_mib: memSizeMib, smt: false },
  };
}

const USAGE = `usage: sparkler demo [--debian]
Boots the default microVM (building its kernel and initramfs when missing).
  --debian   Debian's cloud kernel (unpacked from linux-image-cloud-amd64, no build) and the
             initramfs that loads its virtio modules
`;

function runDirect(args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(BIN, args, { stdio: 'inherit' });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const unknown = argv.filter((a) => a !== '--debian');
  if (unknown.length > 0) {
    process.stderr.write(`sparkler demo: unknown argument '${unknown[0]}'\n${USAGE}`);
    return 2;
  }
  const debian = argv.includes('--debian');
  const guest = await import('../guest');
  const kernel = debian ? (await guest.ensureDebianKernel()).vmlinuz : await guest.ensureKernel();
  const initrd = debian ? await guest.ensureDebianInitrd() : await guest.ensureInitrd();
  // /tmp is shared with the emulated host, so the config is visible there too.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-demo-'));
  const configFile = path.join(dir, 'vm.json');
  fs.writeFileSync(configFile, `${JSON.stringify(defaultVmConfig(kernel, initrd, debian ? 256 : 128), null, 2)}\n`);
  const vmmArgs = ['--no-api', '--boot-timer', '--config-file', configFile];
  const host = detectKvmHost();
  process.stderr.write(`sparkler demo: ${host.summary}\n`);
  if (host.kind === 'hardware') return runDirect(vmmArgs);
  process.stderr.write('sparkler demo: booting inside the emulated KVM host (QEMU TCG with nested SVM); expect a few seconds of start-up.\n');
  const { runInEmuHost } = await import('../emuhost');
  const result = await runInEmuHost([BIN, ...vmmArgs], { stdio: 'inherit', timeoutMs: 10 * 60_000 });
  return result.code;
}
