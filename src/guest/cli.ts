/**
 * `sparkler guest ...`: prints the absolute path of a guest artifact on stdout, building it
 * first when it is not cached. Progress goes to stderr, so `$(sparkler guest kernel)` works.
 */
import { parseArgs } from 'node:util';
import { SparklerError } from '../errors';
import { ensureInitrd, ensureKernel, ensureRootfs, guestCachePaths } from './index';

const USAGE = `usage: sparkler guest <command> [options]

Guest artifacts, built from Debian packages and cached by content hash under
$SPARKLER_CACHE (default /var/cache/sparkler). Each command prints an absolute path.

commands:
  kernel [--bzimage]  the microVM kernel: vmlinux (ELF), or the bzImage with --bzimage
  initrd              the busybox initramfs (gzip cpio, /init)
  rootfs              the busybox ext4 root filesystem image (/sbin/init)
  paths               where every artifact is or would be, as JSON (builds nothing)

The init prints "SPARKLER-INIT-OK cpus=N", writes 123 to the boot timer at 0xC0000000,
runs sparkler.cmd=<base64 shell command> from the kernel command line if given (then prints
SPARKLER-CMD-EXIT=<code>), and reboots (boot the kernel with reboot=k).

options:
  -h, --help          show this help
`;

export async function run(argv: string[]): Promise<number> {
  let values: { bzimage?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: { bzimage: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
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
  if (command === undefined || extra.length > 0 || (values.bzimage && command !== 'kernel')) {
    process.stderr.write(USAGE);
    return 2;
  }
  try {
    let result: string;
    switch (command) {
      case 'kernel': result = await ensureKernel({ format: values.bzimage ? 'bzimage' : 'vmlinux' }); break;
      case 'initrd': result = await ensureInitrd(); break;
      case 'rootfs': result = await ensureRootfs(); break;
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
