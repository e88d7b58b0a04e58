/**
 * The emulated KVM host: QEMU (TCG, emulated AMD CPU with SVM and NPT) booting a Debian kernel
 * whose kvm-amd module provides a real /dev/kvm inside. End-to-end tests that boot stock Linux
 * guests run there on machines whose own /dev/kvm cannot run them (e.g. PVM).
 */
import { prepareImage } from './image';

export { runInEmuHost, insideEmuHost, TIMEOUT_CODE, HOST_FAILURE_CODE } from './run';
export type { RunOptions, RunResult } from './run';
export { checkEmuHost } from './check';
export type { CheckReport } from './check';

/** Builds the kernel and initramfs into the cache if they are not there yet. */
export async function ensureEmuHostImage(): Promise<void> {
  await prepareImage();
}
