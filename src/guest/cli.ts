/**
 * `sparkler guest ...`: prints the absolute path of a guest artifact on stdout, building it
 * first when it is not cached. Progress goes to stderr, so `$(sparkler guest kernel)` works.
 */
import { parseArgs } from 'node:util';
import { SparklerError } from '../errors';
import {
  ensureDebianInitrd, ensureDebianKernel, ensureDebianRootfs, ensureInitrd, ensureKernel, ensureRootfs, ensureToolsRootfs, guestCachePaths,
} from './index';

const USAGE = `usage: sparkler guest <command> [options]

Guest artifacts, built from Debian packages and cached by content hash under
$SPARKLER_CACHE (default /var/cache/sparkler). Each command prints an absolute path.

commands:
  kernel [--bzimage]  the microVM kernel: vmlinux (ELF), or the bzImage with --bzimage
  kernel --debian     Debian's cloud kernel (linux-image-cloud-amd64, a bzImage; no build)
  initrd              the busybox initramfs (gzip cpio, /init)
  initrd --debian     the initramfs for Debian's kernel (loads its virtio modules, mounts root=)
  rootfs              the busybox ext4 root filesystem image (/sbin/init)
  rootfs --tools      the busybox rootfs plus iperf3, socat and fio from Debian
  rootfs --debian [--size MIB]
                      Debian 12 with systemd (debootstrap minbase); --size grows the image
  paths               where every artifact is or would be, as JSON (builds nothing)
  check --debian [--qemu]
                      boot the Debian rootfs and check systemd, root and sparkler.cmd
                      (minutes under emulation); --qemu also boots it in QEMU microvm

Stock kernels (--debian) need hardware KVM; on a PVM host run them inside the emulated
KVM host (sparkler emuhost -- ...). See docs/guests.md.

The init prints "SPARKLER-INIT-OK cpus=N", writes 123 to the boot timer at 0xC0000000,
runs sparkler.cmd=<base64 shell command> from the kernel command line if given (then prints
SPARKLER-CMD-EXIT=<code>), and reboots (boot the kernel with reboot=k).

options:
  --debian            the Debian variant of kernel, initrd or rootfs
  --tools             the tools rootfs
  --size MIB          with rootfs --debian: image size in MiB
  --qemu              with check --debian: compare the boot time with QEMU's microvm
  -h, --help          show this help
`;

/** Why these options do not go with this command, or undefined. */
export function optionMisuse(command: string | undefined, v: { bzimage?: boolean; debian?: boolean; tools?: boolean; size?: string; qemu?: boolean }): string | undefined {
  if (command === 'check' && !v.debian) return 'check needs --debian (the Debian rootfs is the one it checks).';
  if (v.qemu && command !== 'check') return '--qemu goes with check --debian only.';
  if (v.bzimage && command !== 'kernel') return '--bzimage goes with kernel only.';
  if (v.bzimage && v.debian) return "--bzimage and --debian do not go together: Debian's kernel is a bzImage already.";
  if (v.debian && !['kernel', 'initrd', 'rootfs', 'check'].includes(command ?? '')) return '--debian goes with kernel, initrd, rootfs or check.';
  if (v.tools && command !== 'rootfs') return '--tools goes with rootfs only.';
  if (v.tools && v.debian) return '--tools and --debian are two different root filesystems: pick one.';
  if (v.size !== undefined && !(command === 'rootfs' && v.debian)) return '--size goes with rootfs --debian only.';
  if (v.size !== undefined && !/^[1-9]\d*$/.test(v.size)) return `--size takes a whole number of MiB, not '${v.size}'.`;
  return undefined;
}

export async function run(argv: string[]): Promise<number> {
  let values: { bzimage?: boolean; debian?: boolean; tools?: boolean; size?: string; qemu?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: {
        bzimage: { type: 'boolean' },
        debian: { type: 'boolean' },
        tools: { type: 'boolean' },
        size: { type: 'string' },
        qemu: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`sparkler guest: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [command, ...extra] = positionals;
  const misuse = optionMisuse(command, values);
  if (command === undefined || extra.length > 0 || misuse !== undefined) {
    process.stderr.write(`${misuse !== undefined ? `sparkler guest: ${misuse}\n\n` : ''}${USAGE}`);
    return 2;
  }
  try {
    let result: string;
    switch (command) {
      case 'kernel':
        result = values.debian ? (await ensureDebianKernel()).vmlinuz : await ensureKernel({ format: values.bzimage ? 'bzimage' : 'vmlinux' });
        break;
      case 'initrd': result = values.debian ? await ensureDebianInitrd() : await ensureInitrd(); break;
      case 'rootfs':
        if (values.tools) result = await ensureToolsRootfs();
        else if (values.debian) result = await ensureDebianRootfs({ sizeMib: values.size === undefined ? undefined : Number(values.size) });
        else result = await ensureRootfs();
        break;
      case 'check': {
        const { checkDebian } = await import('./check');
        return await checkDebian({ qemu: values.qemu ?? false, log: (line) => process.stderr.write(`[guest check] ${line}\n`) });
      }
      case 'paths': result = JSON.stringify(guestCachePaths(), null, 2); break;
      default:
        process.stderr.write(`sparkler guest: unknown command '${command}'\n\n${USAGE}`);
        return 2;
    }
    process.stdout.write(`${result}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof SparklerError)) throw err;
    process.stderr.write(`sparkler guest: ${err.message}\n`);
    return 1;
  }
}
