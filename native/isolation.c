// The calls that confine a process: mount and pid namespaces, the root, device nodes, limits,
// credentials, exec, and loading a seccomp program. Used by the jailer (src/jailer) and by the
// VMM for its filter (src/seccomp). One function per syscall, the result or -errno, no policy:
// which namespaces, which mounts and which system calls to allow is decided in TypeScript.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <node_api.h>

#include "shim.h"

#define PATH_ARG(env, v, name)                                                        \
  char name[4096];                                                                    \
  do {                                                                                \
    size_t len_;                                                                      \
    NAPI_CALL((env), napi_get_value_string_utf8((env), (v), name, sizeof name, &len_)); \
    if (len_ >= sizeof name - 1) return make_int64((env), -ENAMETOOLONG);            \
  } while (0)

static napi_value result(napi_env env, long r) { return make_int64(env, r < 0 ? -errno : r); }

// True (and *out NULL) when v is null or undefined.
static bool is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && (t == napi_null || t == napi_undefined);
}

// chroot(path) -> 0 | -errno
napi_value js_chroot(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  PATH_ARG(env, argv[0], path);
  return result(env, chroot(path));
}

// pivotRoot(newRoot, putOld) -> 0 | -errno (no glibc wrapper)
napi_value js_pivot_root(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  PATH_ARG(env, argv[0], new_root);
  PATH_ARG(env, argv[1], put_old);
  return result(env, syscall(SYS_pivot_root, new_root, put_old));
}

// mount(source | null, target, fstype | null, flags, data | null) -> 0 | -errno
napi_value js_mount(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  char source[4096], fstype[64], data[1024];
  size_t len;
  const char* src = NULL;
  const char* type = NULL;
  const char* dat = NULL;
  if (!is_nullish(env, argv[0])) {
    NAPI_CALL(env, napi_get_value_string_utf8(env, argv[0], source, sizeof source, &len));
    src = source;
  }
  PATH_ARG(env, argv[1], target);
  if (!is_nullish(env, argv[2])) {
    NAPI_CALL(env, napi_get_value_string_utf8(env, argv[2], fstype, sizeof fstype, &len));
    type = fstype;
  }
  INT_ARG(env, argv[3], flags);
  if (!is_nullish(env, argv[4])) {
    NAPI_CALL(env, napi_get_value_string_utf8(env, argv[4], data, sizeof data, &len));
    dat = data;
  }
  return result(env, mount(src, target, type, (unsigned long)flags, dat));
}

// umount2(target, flags) -> 0 | -errno
napi_value js_umount2(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  PATH_ARG(env, argv[0], target);
  INT_ARG(env, argv[1], flags);
  return result(env, umount2(target, (int)flags));
}

// unshare(flags) -> 0 | -errno. Namespaces other than the mount one apply to the calling thread
// and what it forks; call it from the main thread, which is the one that forks and execs.
napi_value js_unshare(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  INT_ARG(env, argv[0], flags);
  return result(env, unshare((int)flags));
}

// setns(fd, nstype) -> 0 | -errno
napi_value js_setns(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  INT_ARG(env, argv[0], fd);
  INT_ARG(env, argv[1], nstype);
  return result(env, setns((int)fd, (int)nstype));
}

// mknod(path, mode, major, minor) -> 0 | -errno (mode carries the file type, S_IFCHR)
napi_value js_mknod(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  PATH_ARG(env, argv[0], path);
  INT_ARG(env, argv[1], mode);
  INT_ARG(env, argv[2], major_);
  INT_ARG(env, argv[3], minor_);
  return result(env, mknod(path, (mode_t)mode, makedev((unsigned)major_, (unsigned)minor_)));
}

// setrlimit(resource, soft, hard) -> 0 | -errno; a negative limit is RLIM_INFINITY.
napi_value js_setrlimit(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  INT_ARG(env, argv[0], resource);
  INT_ARG(env, argv[1], soft);
  INT_ARG(env, argv[2], hard);
  struct rlimit rl = {soft < 0 ? RLIM_INFINITY : (rlim_t)soft, hard < 0 ? RLIM_INFINITY : (rlim_t)hard};
  return result(env, setrlimit((int)resource, &rl));
}

// setresuid(r, e, s) / setresgid(r, e, s) -> 0 | -errno. glibc's wrappers change every thread of
// the process (the raw syscalls change only the caller).
napi_value js_setresuid(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  INT_ARG(env, argv[0], r);
  INT_ARG(env, argv[1], e);
  INT_ARG(env, argv[2], s);
  return result(env, setresuid((uid_t)r, (uid_t)e, (uid_t)s));
}

napi_value js_setresgid(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  INT_ARG(env, argv[0], r);
  INT_ARG(env, argv[1], e);
  INT_ARG(env, argv[2], s);
  return result(env, setresgid((gid_t)r, (gid_t)e, (gid_t)s));
}

// setgroups(gids: number[]) -> 0 | -errno
napi_value js_setgroups(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  uint32_t n;
  NAPI_CALL(env, napi_get_array_length(env, argv[0], &n));
  if (n > 64) return make_int64(env, -EINVAL);
  gid_t gids[64];
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    NAPI_CALL(env, napi_get_element(env, argv[0], i, &item));
    INT_ARG(env, item, gid);
    gids[i] = (gid_t)gid;
  }
  return result(env, setgroups(n, gids));
}

// prctl(option, arg2, arg3, arg4, arg5) -> result | -errno (per-thread options act on the caller)
napi_value js_prctl(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  INT_ARG(env, argv[0], option);
  INT_ARG(env, argv[1], a2);
  INT_ARG(env, argv[2], a3);
  INT_ARG(env, argv[3], a4);
  INT_ARG(env, argv[4], a5);
  return result(env, prctl((int)option, (unsigned long)a2, (unsigned long)a3, (unsigned long)a4, (unsigned long)a5));
}

// setsid() -> the new session id | -errno
napi_value js_setsid(napi_env env, napi_callback_info info) {
  (void)info;
  return result(env, setsid());
}

// closeRange(first, last, flags) -> 0 | -errno (CLOSE_RANGE_CLOEXEC marks instead of closing)
napi_value js_close_range(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  INT_ARG(env, argv[0], first);
  INT_ARG(env, argv[1], last);
  INT_ARG(env, argv[2], flags);
  return result(env, syscall(SYS_close_range, (unsigned)first, (unsigned)last, (unsigned)flags));
}

// fcntl(fd, cmd, arg) -> result | -errno (integer argument forms only: F_GETFD, F_SETFD, ...)
napi_value js_fcntl(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  INT_ARG(env, argv[0], fd);
  INT_ARG(env, argv[1], cmd);
  INT_ARG(env, argv[2], arg);
  return result(env, fcntl((int)fd, (int)cmd, (long)arg));
}

// Copies a JS string array into a NULL-terminated vector (strdup'ed). NULL after throwing.
static char** string_vector(napi_env env, napi_value array) {
  uint32_t n;
  if (napi_get_array_length(env, array, &n) != napi_ok || n > 4096) {
    napi_throw_type_error(env, NULL, "Expected an array of at most 4096 strings.");
    return NULL;
  }
  char** out = calloc(n + 1, sizeof(char*));
  if (out == NULL) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    size_t len;
    if (napi_get_element(env, array, i, &item) != napi_ok ||
        napi_get_value_string_utf8(env, item, NULL, 0, &len) != napi_ok) {
      napi_throw_type_error(env, NULL, "Expected an array of strings.");
      return NULL;  // leaks the copies made so far: the caller is about to fail anyway
    }
    out[i] = malloc(len + 1);
    napi_get_value_string_utf8(env, item, out[i], len + 1, &len);
  }
  return out;
}

static void free_vector(char** v) {
  if (v == NULL) return;
  for (char** p = v; *p; p++) free(*p);
  free(v);
}

// execve(path, argv, envp) -> only returns on failure: -errno. Run from the main thread: the
// kernel ends every other thread of the process.
napi_value js_execve(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  PATH_ARG(env, argv[0], path);
  char** args = string_vector(env, argv[1]);
  if (args == NULL) return NULL;
  char** envp = string_vector(env, argv[2]);
  if (envp == NULL) { free_vector(args); return NULL; }
  execve(path, args, envp);
  int err = errno;
  free_vector(args);
  free_vector(envp);
  return make_int64(env, -err);
}

// seccompSetFilter(flags, program) -> 0 (or a thread id that blocked TSYNC) | -errno. program
// holds struct sock_filter entries (8 bytes each). The kernel copies it; no_new_privs (or
// CAP_SYS_ADMIN) must be set first.
napi_value js_seccomp_set_filter(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  INT_ARG(env, argv[0], flags);
  void* data;
  size_t bytes;
  if (!view_bytes(env, argv[1], "program", &data, &bytes)) return NULL;
  if (bytes == 0 || bytes % sizeof(struct sock_filter) != 0 || bytes / sizeof(struct sock_filter) > 0xffff) {
    return make_int64(env, -EINVAL);
  }
  struct sock_fprog prog = {(unsigned short)(bytes / sizeof(struct sock_filter)), (struct sock_filter*)data};
  return result(env, syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, (unsigned)flags, &prog));
}

// rawSyscall(nr) -> result | -errno: a system call by number with no arguments, for tests that
// check a filter kills the process on a call it does not allow.
napi_value js_raw_syscall(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  INT_ARG(env, argv[0], nr);
  return result(env, syscall((long)nr, 0, 0, 0, 0, 0, 0));
}

// The SIGSYS handler's settings: where to write its line and the two exit codes.
static int sigsys_fd = 2;
static int sigsys_seccomp_exit = 148;
static int sigsys_other_exit = 2;

// Runs on the thread whose call the filter trapped: writes one line naming the call and ends
// the process at once (async-signal-safe calls only; no JS can run here).
static void on_sigsys(int sig, siginfo_t* si, void* ctx) {
  (void)sig;
  (void)ctx;
  if (si->si_code != 1 /* SYS_SECCOMP */) _exit(sigsys_other_exit);
  char line[96];
  int n = snprintf(line, sizeof line, "Shutting down VM after intercepting a bad syscall (%d).\n", si->si_syscall);
  if (n > 0 && write(sigsys_fd, line, (size_t)n) < 0) { /* nothing left to tell */ }
  _exit(sigsys_seccomp_exit);
}

// installSigsysHandler(fd, seccompExit, otherExit) -> 0 | -errno. A filter's trap action raises
// SIGSYS; this handler turns it into a log line on fd and exit(seccompExit); a SIGSYS sent by
// kill() exits otherExit.
napi_value js_install_sigsys_handler(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  INT_ARG(env, argv[0], fd);
  INT_ARG(env, argv[1], seccomp_exit);
  INT_ARG(env, argv[2], other_exit);
  sigsys_fd = (int)fd;
  sigsys_seccomp_exit = (int)seccomp_exit;
  sigsys_other_exit = (int)other_exit;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigsys;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  return result(env, sigaction(SIGSYS, &sa, NULL));
}
