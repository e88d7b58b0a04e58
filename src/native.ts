/**
 * The one place the native addon is loaded. Everything else imports `native` from here.
 * Functions return the syscall result or -errno (see native/: sparkler.c, vcpu.c, memory.c); src/kvm turns a
 * negative result into a SyscallError with context.
 */
import * as path from 'node:path';
import { SparklerError } from './errors';

export interface MmapResult {
  buffer: ArrayBuffer;
  address: bigint;
}

/** Opaque handle of a native vCPU thread. */
export type VcpuHandle = { readonly __brand: 'VcpuHandle' };

/** Opaque handle of an fd watched on the main loop. */
export type WatchHandle = { readonly __brand: 'WatchHandle' };

/** Called on the main thread after each KVM_RUN return: result is 0 or -errno. */
export type VcpuExitCallback = (index: number, result: number, firstRunNs: bigint) => void;

/** vcpuResumeAndWait's answers without the vCPU's next exit: it spun and none came in time... */
export const VCPU_EXIT_PENDING = 1;
/** ...or it did not spin (spinNs 0, or the vCPU thread last seen on this CPU). */
export const VCPU_EXIT_NOT_AWAITED = 2;

export interface NativeShim {
  open(path: string, flags: number): number;
  close(fd: number): number;
  ioctl(fd: number, request: number, arg: number | bigint | Uint8Array): number;
  mmap(length: number, prot: number, flags: number, fd: number, offset: number): MmapResult | number;
  madvise(bytes: Uint8Array, advice: number): number;
  /** The CPUs this process may run on (sched_getaffinity), like os.availableParallelism(). */
  availableCpus(): number;
  addressOf(bytes: Uint8Array): bigint;
  eventfd(initval: number, flags: number): number;
  eventfdWrite(fd: number, value: number): number;
  /** Reads an eventfd (opened with EFD_NONBLOCK): its counter, 0 if none pending, or -errno. */
  eventfdRead(fd: number): number;
  /** Calls onReadable on the main loop whenever fd is readable (uv_poll). */
  watchFd(fd: number, onReadable: (eventsOrError: number) => void, events?: number): WatchHandle;
  /** Changes which readiness a watch reports (1 readable, 2 writable). */
  updateWatch(handle: WatchHandle, events: number): void;
  unwatchFd(handle: WatchHandle): void;
  /** Unmaps an mmap'd ArrayBuffer now and detaches it (views read length 0); -errno. */
  munmap(buffer: ArrayBuffer): number;
  monotonicNs(): bigint;
  /**
   * Starts a vCPU thread running KVM_RUN on `fd`. Exits not taken by vcpuResumeAndWait come
   * through onExit. spinNs: how long the thread spins for each resume before it sleeps on a
   * futex (0: sleep at once).
   */
  vcpuStart(fd: number, index: number, onExit: VcpuExitCallback, spinNs: number): VcpuHandle;
  /** Lets the vCPU whose exit the caller holds run again, or end its thread (stop). */
  vcpuResume(handle: VcpuHandle, stop: boolean): void;
  /**
   * vcpuResume(handle, false), then spins up to spinNs for the vCPU's next exit: KVM_RUN's
   * result (0 or -errno) if it arrived (kvm_run holds it and the caller owns it, onExit is not
   * called), else VCPU_EXIT_PENDING or VCPU_EXIT_NOT_AWAITED and the exit will come through
   * onExit. It does not spin when the vCPU thread was last seen on the calling thread's CPU
   * (the spin would hold up the thread it waits for), and spins less where exits come fast.
   */
  vcpuResumeAndWait(handle: VcpuHandle, spinNs: number): number;
  /**
   * Resumes the vCPU whose exit the caller holds and keeps its next exit for vcpuAwaitExit
   * instead of posting it to onExit: call vcpuAwaitExit in the same event-loop turn.
   */
  vcpuResumeWatched(handle: VcpuHandle): void;
  /** After vcpuResumeWatched: the next exit, as vcpuResumeAndWait answers (spinning up to spinNs). */
  vcpuAwaitExit(handle: VcpuHandle, spinNs: number): number;
  vcpuKick(handle: VcpuHandle): number;
  vcpuJoin(handle: VcpuHandle): number;
  // The four below are optional: an addon built before they existed lacks them.
  /** glibc malloc_trim(pad): gives the free pages of every malloc arena back; 1 if any were, else 0. */
  mallocTrim?(pad: number): number;
  /**
   * Node's node::LowMemoryNotification(): V8 collects all garbage in memory-reducing mode
   * (shrinks the young generation, compacts, frees pooled pages). 0, or -ENOSYS when the running
   * node does not export it.
   */
  lowMemoryNotification?(): number;
  /** V8's v8::V8::SetFlagsFromString(flags) (max 254 bytes). 0, or -ENOSYS when node does not export it. */
  setV8Flags?(flags: string): number;
  /**
   * Maps the file read-only for the life of the process and returns its bytes as an external
   * Latin-1 string over the mapping (src/build/launch.ts, for the bundle's source): copied is
   * true when V8 copied them after all. -errno (-ENOSYS: node lacks external strings).
   */
  mapFileLatin1?(file: string): { text: string; copied: boolean } | number;
}

const ADDON_CANDIDATES = [
  path.join(__dirname, '..', 'build', 'Release', 'sparkler.node'),
  path.join(__dirname, '..', 'build', 'Debug', 'sparkler.node'),
];

/** Where src/build/launch.ts leaves the addon when it loaded it first (its ADDON_KEY). */
const LAUNCHER_ADDON = Symbol.for('sparkler.addon');

function loadAddon(): NativeShim {
  const loaded = (globalThis as Record<symbol, NativeShim | undefined>)[LAUNCHER_ADDON];
  if (loaded) return loaded;
  const failures: string[] = [];
  for (const candidate of ADDON_CANDIDATES) {
    try {
      // process.dlopen, not require: no module resolution or realpath walk (a file-system round
      // trip each; ~50 ms apiece on the emulated host's 9p root).
      const addon = { exports: {} };
      process.dlopen(addon, candidate);
      return addon.exports as NativeShim;
    } catch (err) {
      failures.push(`  ${candidate}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new SparklerError(
    'ENATIVE',
    `The native addon could not be loaded; run \`npm install\` (or \`npx node-gyp rebuild\`) to build it. Tried:\n${failures.join('\n')}`,
  );
}

let cached: NativeShim | undefined;

/** The native shim, loaded on first use so that commands which need no KVM never load it. */
export function native(): NativeShim {
  cached ??= loadAddon();
  return cached;
}
