/**
 * The default allow-list of a Sparkler VMM on Node 20 (x86_64), as data: one entry per system
 * call, with why it is needed. Derived from strace of the real-KVM test files (the API driven by
 * curl, devices, lifecycle, the jailed VMM: `strace -f -e raw=ioctl,socket,mmap,mprotect`, the
 * calls of the node processes and their threads; docs/seccomp.md has the command), then the
 * calls of code paths those tests do not reach (block I/O, snapshots) and nothing else.
 * Node's own threads (V8 platform workers, libuv pool) run under the same filter, so V8's and
 * libuv's needs are here too. Another Node major gets a list of its own (allowlist.ts picks).
 */
import { ArgCondition } from './bpf';

export interface AllowEntry {
  syscall: string;
  why: string;
  /** Alternatives (OR) of conditions (AND); absent: allowed with any arguments. */
  when?: ArgCondition[][];
}

/**
 * ioctl request types (bits 8-15): KVMIO 0xAE, 'T' 0x54 (terminal, FIONBIO, TUN), 0x89 (socket),
 * 0xAA (userfaultfd's UFFDIO_*, for snapshot restore with a page-fault handler).
 */
const ioctlType = (type: number): ArgCondition[] => [{ index: 1, type: 'dword', op: { masked_eq: 0xff00n }, value: BigInt(type << 8) }];
const AF_UNIX = 1n;
const CLONE_THREAD = 0x10000n;

export const NODE20_ALLOWLIST: readonly AllowEntry[] = [
  // File and fd I/O: the API socket, drives, logs, metrics, the bundle, eventfds.
  { syscall: 'read', why: 'fds of every kind: eventfds, sockets, files' },
  { syscall: 'write', why: 'logs, metrics, serial output, eventfds' },
  { syscall: 'readv', why: 'native readv (devices), libuv stream reads' },
  { syscall: 'writev', why: 'libuv stream writes (API responses), native writev' },
  { syscall: 'pread64', why: 'kernel/initrd loading, drive reads (Sync engine), fs.readSync at a position' },
  { syscall: 'pwrite64', why: 'drive writes at a position' },
  { syscall: 'preadv', why: 'block device Sync engine: a request\'s buffers in one call' },
  { syscall: 'pwritev', why: 'block device Sync engine' },
  { syscall: 'preadv2', why: 'libuv fs reads with flags' },
  { syscall: 'pwritev2', why: 'libuv fs writes with flags' },
  { syscall: 'lseek', why: 'file sizes and positions (drives, kernel images)' },
  { syscall: 'openat', why: 'drives, kernels, log and metrics files, /dev/kvm, /dev/net/tun, /dev/urandom' },
  { syscall: 'close', why: 'every fd has an owner that closes it' },
  { syscall: 'close_range', why: 'libuv closes fds in bulk' },
  { syscall: 'dup', why: 'libuv duplicates stdio fds' },
  { syscall: 'dup2', why: 'libuv stdio set-up' },
  { syscall: 'dup3', why: 'libuv stdio set-up (cloexec form)' },
  { syscall: 'fcntl', why: 'O_NONBLOCK and FD_CLOEXEC on fds (libuv, the native shim)' },
  { syscall: 'fstat', why: 'file sizes (fs.fstatSync)' },
  { syscall: 'newfstatat', why: 'fs.statSync and friends' },
  { syscall: 'statx', why: 'libuv stat (Node 20 uses statx)' },
  { syscall: 'access', why: 'fs.existsSync/accessSync (kernel and drive checks)' },
  { syscall: 'faccessat2', why: 'newer glibc form of access' },
  { syscall: 'readlink', why: 'realpath of paths given to the API' },
  { syscall: 'readlinkat', why: 'realpath (newer form)' },
  { syscall: 'getcwd', why: 'process.cwd() for relative paths' },
  { syscall: 'getdents64', why: 'directory listings (fs.readdirSync)' },
  { syscall: 'unlink', why: 'removing a stale API socket before bind, temporary files' },
  { syscall: 'unlinkat', why: 'newer form of unlink' },
  { syscall: 'rename', why: 'code cache and metrics files written through a rename' },
  { syscall: 'renameat2', why: 'newer form of rename' },
  { syscall: 'fsync', why: 'block device flush' },
  { syscall: 'fdatasync', why: 'block device flush (VIRTIO_BLK_T_FLUSH)' },
  { syscall: 'ftruncate', why: 'snapshot memory files sized before writing' },
  { syscall: 'fallocate', why: 'block discard / write zeroes, snapshot files' },
  { syscall: 'pipe2', why: 'libuv async handles and signal pipes' },
  { syscall: 'eventfd2', why: 'KVM ioeventfds and irqfds, libuv wake-ups' },
  { syscall: 'ioctl', why: 'KVM (type 0xAE), terminal/FIONBIO/TUN (0x54), socket interface (0x89), userfaultfd (0xAA); nothing else', when: [ioctlType(0xae), ioctlType(0x54), ioctlType(0x89), ioctlType(0xaa)] },
  // Not reached by the traced tests: features of the second wave (snapshots, uffd, memory files).
  { syscall: 'userfaultfd', why: 'snapshot restore with a page-fault handler (when /dev/userfaultfd is not used)' },
  { syscall: 'memfd_create', why: 'guest memory backed by a file for snapshots and vhost-style sharing' },
  { syscall: 'msync', why: 'flushing a memory-mapped snapshot file' },
  { syscall: 'copy_file_range', why: 'fs.copyFile (snapshot and drive copies)' },
  { syscall: 'sendfile', why: 'fs.copyFile fallback' },
  { syscall: 'fstatfs', why: 'huge page and filesystem checks on memory files' },
  // Event loop and threads.
  { syscall: 'epoll_create1', why: 'libuv event loop' },
  { syscall: 'epoll_ctl', why: 'libuv: fds watched on the loop' },
  { syscall: 'epoll_pwait', why: 'libuv: the loop waits here' },
  { syscall: 'epoll_wait', why: 'libuv loop (older form)' },
  { syscall: 'poll', why: 'libuv on a few fd kinds' },
  { syscall: 'ppoll', why: 'newer form of poll' },
  { syscall: 'futex', why: 'every lock and condition variable (vCPU hand-over, V8, libuv)' },
  { syscall: 'clone3', why: 'pthread_create (glibc 2.34+): vCPU threads, libuv pool threads' },
  { syscall: 'clone', why: 'pthread_create where clone3 is unavailable: threads only, never a new process', when: [[{ index: 0, type: 'qword', op: { masked_eq: CLONE_THREAD }, value: CLONE_THREAD }]] },
  { syscall: 'set_robust_list', why: 'each new thread' },
  { syscall: 'rseq', why: 'each new thread (glibc registers restartable sequences)' },
  { syscall: 'exit', why: 'a thread ends (vCPU join, pool shutdown)' },
  { syscall: 'exit_group', why: 'the process ends' },
  { syscall: 'gettid', why: 'thread ids (V8, libuv)' },
  { syscall: 'getpid', why: 'process.pid, libuv' },
  { syscall: 'sched_yield', why: 'spin waits (vCPU hand-over, V8)' },
  { syscall: 'sched_getaffinity', why: 'os.availableParallelism, the vCPU spin policy' },
  { syscall: 'nanosleep', why: 'short sleeps (V8, libuv)' },
  { syscall: 'clock_nanosleep', why: 'glibc\'s form of nanosleep' },
  { syscall: 'clock_gettime', why: 'clocks when the vDSO is not used' },
  { syscall: 'gettimeofday', why: 'Date.now when the vDSO is not used' },
  // Signals: the vCPU kick, fatal-signal handlers, libuv signal watchers.
  { syscall: 'rt_sigaction', why: 'signal handlers (libuv, the SIGSYS handler)' },
  { syscall: 'rt_sigprocmask', why: 'signal masks around thread creation and in libuv' },
  { syscall: 'rt_sigreturn', why: 'return from every signal handler' },
  { syscall: 'sigaltstack', why: 'threads with an alternate signal stack' },
  { syscall: 'restart_syscall', why: 'a sleep interrupted by a signal resumes' },
  { syscall: 'tgkill', why: 'the vCPU kick signal to a vCPU thread' },
  // Memory: guest RAM, the V8 heap and its JIT code space, malloc.
  { syscall: 'mmap', why: 'guest RAM, V8 heap pages, malloc arenas, the bundle mapped as a string' },
  { syscall: 'munmap', why: 'guest RAM and heap pages released' },
  { syscall: 'mprotect', why: 'V8 flips JIT code pages between writable and executable (PROT_EXEC is needed)' },
  { syscall: 'mremap', why: 'glibc realloc of large blocks' },
  { syscall: 'madvise', why: 'balloon and memory settle (DONTNEED), V8 heap' },
  { syscall: 'mincore', why: 'a Diff snapshot without dirty tracking writes the resident guest pages' },
  { syscall: 'brk', why: 'malloc\'s main arena' },
  { syscall: 'getrandom', why: 'V8 hash seeds, crypto.randomBytes (MMDS tokens)' },
  { syscall: 'getrusage', why: 'process.cpuUsage for the start-up metrics' },
  { syscall: 'prlimit64', why: 'Node reads its limits' },
  { syscall: 'prctl', why: 'thread names (PR_SET_NAME: fc_vcpu N) and no_new_privs before a filter' },
  { syscall: 'seccomp', why: 'a custom filter may be stacked on the default one' },
  { syscall: 'uname', why: 'os.release and V8 feature checks' },
  { syscall: 'sysinfo', why: 'os.totalmem and V8 heap sizing' },
  { syscall: 'getuid', why: 'libuv and Node query their credentials' },
  { syscall: 'geteuid', why: 'as getuid' },
  { syscall: 'getgid', why: 'as getuid' },
  { syscall: 'getegid', why: 'as getuid' },
  { syscall: 'capget', why: 'Node checks its capabilities' },
  // Sockets: the API server and (later) vsock backends, all Unix domain.
  { syscall: 'socket', why: 'the API socket and vsock backends: AF_UNIX only', when: [[{ index: 0, type: 'dword', op: 'eq', value: AF_UNIX }]] },
  { syscall: 'socketpair', why: 'native socketpair (AF_UNIX, the shim fixes the family)' },
  { syscall: 'bind', why: 'the API socket' },
  { syscall: 'listen', why: 'the API socket' },
  { syscall: 'accept4', why: 'API clients' },
  { syscall: 'connect', why: 'vsock host connections' },
  { syscall: 'shutdown', why: 'API connection close' },
  { syscall: 'getsockname', why: 'libuv on accepted sockets' },
  { syscall: 'getsockopt', why: 'libuv (SO_ERROR)' },
  { syscall: 'setsockopt', why: 'libuv socket options' },
  { syscall: 'sendmsg', why: 'native sendmsg (SCM_RIGHTS)' },
  { syscall: 'recvmsg', why: 'native recvmsg (SCM_RIGHTS)' },
  { syscall: 'sendto', why: 'libuv datagram/stream writes' },
  { syscall: 'recvfrom', why: 'libuv stream reads' },
];
