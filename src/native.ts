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

/**
 * What an fd watch waits for: 'r' (readable), 'w' (writable), 'rw', or the mask of
 * FD_READABLE | FD_WRITABLE. updateWatch also takes 0 (paused).
 */
export type WatchEvents = 'r' | 'w' | 'rw' | number;
/** Bits of a watch callback's events (libuv's UV_READABLE and UV_WRITABLE). */
export const FD_READABLE = 1;
export const FD_WRITABLE = 2;

/** recvmsg's answer: the bytes read into bufs (0 with no fds: end of stream) and the fds received. */
export interface RecvmsgResult {
  bytes: number;
  /** Received fds, close-on-exec; the caller owns (and must close) them. */
  fds: number[];
  /** msg_flags: MSG_CTRUNC when fds past maxFds were dropped, MSG_TRUNC for a cut datagram. */
  flags: number;
}
/** recvmsg's msg_flags bits (linux/socket.h). */
export const MSG_TRUNC = 0x20;
export const MSG_CTRUNC = 0x08;

/** socketpair types (linux/net.h): SOCK_NONBLOCK may be or-ed in. */
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_SEQPACKET = 5;
export const SOCK_NONBLOCK = 0o4000;

/** Called on the main thread after each KVM_RUN return: result is 0 or -errno. */
export type VcpuExitCallback = (index: number, result: number, firstRunNs: bigint) => void;

/** vcpuResumeAndWait's answers without the vCPU's next exit: it spun and none came in time... */
export const VCPU_EXIT_PENDING = 1;
/** ...or it did not spin (spinNs 0, or the vCPU thread last seen on this CPU). */
export const VCPU_EXIT_NOT_AWAITED = 2;

export interface NativeShim {
  open(path: string, flags: number): number;
  close(fd: number): number;
  /**
   * ioctl(2): the result, or -errno. `arg` is passed by value (a number) or by address (a view:
   * the struct, read and written in place). A view shorter than the size the request encodes
   * (_IOC_SIZE) is refused with -EINVAL without calling ioctl; a longer one is fine (kvm_cpuid2
   * and kvm_msrs encode only their header).
   */
  ioctl(fd: number, request: number, arg: number | bigint | ArrayBufferView): number;
  /**
   * mmap(2) with the kernel choosing the address: the mapping as an ArrayBuffer (no copy) and its
   * address, or -errno. It is unmapped by munmap, or when the buffer is garbage-collected.
   */
  mmap(length: number, prot: number, flags: number, fd: number, offset: number): MmapResult | number;
  /**
   * Unmaps a buffer from mmap now, detaching it first: every view of it has length 0 afterwards.
   * 0, -EINVAL for a buffer not from mmap or already unmapped, or munmap's -errno. Anything else
   * holding the address (a KVM memory slot) must be done with it first.
   */
  munmap(buffer: ArrayBuffer): number;
  /** madvise(2) over the pages of a byte range (Uint8Array or Buffer; other views throw): 0 or -errno. */
  madvise(bytes: Uint8Array, advice: number): number;
  /**
   * mincore(2) over a page-aligned Uint8Array: `out[i] & 1` says whether its page i is resident.
   * `out` holds at least one byte per page. 0 or -errno (-EINVAL for an unaligned or short input).
   */
  mincore(bytes: Uint8Array, out: Uint8Array): number;
  /** The CPUs this process may run on (sched_getaffinity), like os.availableParallelism(). */
  availableCpus(): number;
  addressOf(bytes: Uint8Array): bigint;
  eventfd(initval: number, flags: number): number;
  eventfdWrite(fd: number, value: number): number;
  /** Reads an eventfd (opened with EFD_NONBLOCK): its counter, 0 if none pending, or -errno. */
  eventfdRead(fd: number): number;
  /**
   * Calls onReady on the main loop whenever fd is ready for `events` (uv_poll; default 'r'), with
   * the ready events (FD_READABLE | FD_WRITABLE) or a negative errno. Level-triggered: a writable
   * watch fires every loop turn while the fd is writable, so narrow it with updateWatch once the
   * write that waited went through. libuv makes the fd non-blocking; one watch per fd. Throws
   * (code EWATCHFD, naming the fd and libuv's error) when the fd cannot be polled, e.g. a regular
   * file (EPERM) or an fd already watched (EEXIST).
   */
  watchFd(fd: number, onReady: (eventsOrError: number) => void, events?: WatchEvents): WatchHandle;
  /** Watches for other events from now on; 0 pauses the watch. Throws EWATCHFD after unwatchFd. */
  updateWatch(handle: WatchHandle, events: WatchEvents): void;
  /** Stops the watch: no callback after this; again is a no-op. */
  unwatchFd(handle: WatchHandle): void;
  /** read(2) into buf: the bytes read (0 at end of file), or -errno (-EAGAIN: nothing yet). */
  read(fd: number, buf: ArrayBufferView): number;
  /** write(2) from buf: the bytes written, or -errno (-EAGAIN: no room yet). */
  write(fd: number, buf: ArrayBufferView): number;
  /** lseek(2): the new offset, or -errno (SEEK_DATA/SEEK_HOLE past the last data: -ENXIO). */
  lseek(fd: number, offset: number, whence: number): number;
  /** socket(2): an fd, or -errno. */
  socket(domain: number, type: number, protocol: number): number;
  /** connect(2) of a Unix socket to `path`: 0 or -errno (a path over 107 bytes throws). */
  connectUnix(fd: number, path: string): number;
  /** bind(2) of a Unix socket to `path`: 0 or -errno. */
  bindUnix(fd: number, path: string): number;
  listen(fd: number, backlog: number): number;
  /** accept4(2) with `flags` (SOCK_NONBLOCK, SOCK_CLOEXEC): the connection's fd, or -errno (-EAGAIN: none yet). */
  accept(fd: number, flags: number): number;
  /** userfaultfd(2): an fd, or -errno. */
  userfaultfd(flags: number): number;
  /** readv(2) into bufs in order (at most 1024): the bytes read, or -errno. */
  readv(fd: number, bufs: readonly ArrayBufferView[]): number;
  /** writev(2) from bufs in order (at most 1024): the bytes written, or -errno. */
  writev(fd: number, bufs: readonly ArrayBufferView[]): number;
  /**
   * sendmsg(2) of bufs with `fds` as one SCM_RIGHTS message (at most 253): the bytes sent, or
   * -errno. Never blocks (-EAGAIN when full) and never raises SIGPIPE (-EPIPE). On a stream
   * socket fds travel with the first byte, so send at least one with them.
   */
  sendmsg(fd: number, bufs: readonly ArrayBufferView[], fds: readonly number[]): number;
  /**
   * recvmsg(2) into bufs, taking up to maxFds (0..253) passed fds: the result, or -errno. Never
   * blocks (-EAGAIN when nothing is queued). Received fds are close-on-exec.
   */
  recvmsg(fd: number, bufs: readonly ArrayBufferView[], maxFds: number): RecvmsgResult | number;
  /** socketpair(AF_UNIX, type | SOCK_CLOEXEC): the two connected fds, or -errno. */
  socketpair(type: number): [number, number] | number;
  monotonicNs(): bigint;
  /**
   * Starts a vCPU thread, named `fc_vcpu <index>` as Firecracker's are, running KVM_RUN on `fd`.
   * Exits not taken by vcpuResumeAndWait come through onExit. spinNs: how long the thread spins for each resume before it sleeps on a
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
  /**
   * The port-I/O fast path (native/fast-pio.c, layout in vmm/fast-pio.ts): an empty rule table and
   * byte ring as an ArrayBuffer; C writes 1 to `eventfd` (-1: none) when the ring turns non-empty.
   * Optional: an addon built before it lacks it (and the fake has none).
   */
  fastPioCreate?(eventfd: number): ArrayBuffer;
  /** Lets the vCPU's thread answer the accesses `table` matches, in its kvm_run mapping `run`: 0, or -EBUSY if already set. */
  vcpuSetFastPio?(handle: VcpuHandle, table: ArrayBuffer, run: Uint8Array): number;
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

/**
 * The confinement calls (native/isolation.c), for the jailer and the seccomp loader: each returns
 * the syscall's result or -errno. Kept apart from NativeShim so that fakes of the VMM's calls need
 * not grow; an addon built before they existed lacks them (isolationCalls() then throws).
 */
export interface IsolationShim {
  chroot(path: string): number;
  pivotRoot(newRoot: string, putOld: string): number;
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): number;
  umount2(target: string, flags: number): number;
  unshare(flags: number): number;
  setns(fd: number, nstype: number): number;
  /** mode includes the file type (S_IFCHR). */
  mknod(path: string, mode: number, major: number, minor: number): number;
  /** A negative limit is RLIM_INFINITY. */
  setrlimit(resource: number, soft: number, hard: number): number;
  /** glibc's wrappers: every thread of the process changes. */
  setresuid(r: number, e: number, s: number): number;
  setresgid(r: number, e: number, s: number): number;
  setgroups(gids: readonly number[]): number;
  prctl(option: number, a2: number, a3: number, a4: number, a5: number): number;
  setsid(): number;
  closeRange(first: number, last: number, flags: number): number;
  /** fcntl with an integer argument (F_GETFD = 1, F_SETFD = 2). */
  fcntl(fd: number, cmd: number, arg: number): number;
  /** Returns only on failure (-errno); on success the process is the new program. */
  execve(path: string, argv: readonly string[], envp: readonly string[]): number;
  /** seccomp(SECCOMP_SET_MODE_FILTER, flags, program of 8-byte sock_filter entries). */
  seccompSetFilter(flags: number, program: Uint8Array): number;
  /**
   * SIGSYS from a filter's trap: writes "Shutting down VM after intercepting a bad syscall (N)."
   * to fd and exits seccompExit; a SIGSYS sent by kill() exits otherExit.
   */
  installSigsysHandler(fd: number, seccompExit: number, otherExit: number): number;
  /** syscall(nr) with zero arguments: for tests of a filter. */
  rawSyscall(nr: number): number;
}

export function isolationCalls(): IsolationShim {
  const shim = native() as unknown as Partial<IsolationShim>;
  if (typeof shim.seccompSetFilter !== 'function') {
    throw new SparklerError('ENATIVE', 'The native addon predates the confinement calls; run `npx node-gyp rebuild`.');
  }
  return shim as IsolationShim;
}
