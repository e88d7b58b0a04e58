/** Shared by the tests that boot the project's guest kernel under QEMU (software emulation). */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { guestCachePaths } from '../guest/index';

export const QEMU = 'qemu-system-x86_64';

/** Why such a test cannot run here (no QEMU, kernel not built), or false. */
export function qemuKernelSkipReason(): string | false {
  if (spawnSync(QEMU, ['--version']).status !== 0) return `${QEMU} is not installed (apt-get install qemu-system-x86)`;
  try {
    const kernel = guestCachePaths().kernel.bzImage;
    if (!existsSync(kernel)) return `the kernel is not built yet (${kernel}); run 'sparkler guest kernel'`;
  } catch (err) {
    return (err as Error).message;
  }
  return false;
}
