// Sparkler's native shim: one N-API function per syscall, and the property table. Byte I/O on
// fds (read/write, readv/writev, sendmsg/recvmsg, socketpair) is in native/fd-io.c; fd watching
// on the main loop in native/fd-watch.c; the vCPU threads and their hand-over in native/vcpu.c;
// the calls about the VMM's own memory (malloc_trim, two entry points of the running node, the
// bundle mapped as an external string) in native/memory.c; the helpers they share in
// native/shim.h.
// No policy lives here: struct layouts, ioctl numbers and every decision about an exit are in
// TypeScript (src/kvm, src/vmm). Functions return the syscall's result, or -errno on failure,
// so TypeScript builds the error with context. Only argument-type mistakes throw here.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <node_api.h>

#include "shim.h"


// open(path: string, flags: number) -> fd | -errno
static napi_value js_open(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  char path[4096];
  size_t len;
  NAPI_CALL(env, napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len));
  INT_ARG(env, argv[1], flags);
  int fd = open(path, (int)flags | O_CLOEXEC);
  return make_int64(env, fd < 0 ? -errno : fd);
}

// close(fd) -> 0 | -errno
static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  INT_ARG(env, argv[0], fd);
  return make_int64(env, close((int)fd) < 0 ? -errno : 0);
}

// ioctl(fd, request, arg) -> result | -errno. `arg` is an integer (passed by value) or an
// ArrayBufferView (TypedArray, Buffer, DataView) whose bytes the kernel reads and/or writes in
// place (the struct). A view shorter than the size the request encodes (_IOC_SIZE) is refused
// with -EINVAL before any ioctl: the kernel would read or write past its end. Longer is fine
// (structs with a variable tail, such as kvm_cpuid2 and kvm_msrs, encode only their header).
static napi_value js_ioctl(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  INT_ARG(env, argv[0], fd);
  INT_ARG(env, argv[1], request);
  bool is_typed = false, is_view = false;
  NAPI_CALL(env, napi_is_typedarray(env, argv[2], &is_typed));
  if (!is_typed) NAPI_CALL(env, napi_is_dataview(env, argv[2], &is_view));
  long ret;
  if (is_typed || is_view) {
    void* data;
    size_t bytes;
    if (!view_bytes(env, argv[2], "arg", &data, &bytes)) return NULL;
    if (bytes < _IOC_SIZE((unsigned long)request)) return make_int64(env, -EINVAL);
    // Safety: the kernel accesses _IOC_SIZE(request) bytes at `data` (checked above) for a
    // fixed-size struct; for a variable one, as many as its header says, which TypeScript
    // sizes the buffer for.
    ret = ioctl((int)fd, (unsigned long)request, data);
  } else {
    INT_ARG(env, argv[2], value);
    ret = ioctl((int)fd, (unsigned long)request, (unsigned long)value);
  }
  return make_int64(env, ret < 0 ? -errno : ret);
}

// One mapping made by mmap(), kept on its ArrayBuffer (napi_wrap) until the buffer is collected.
typedef struct {
  void* address;
  size_t length;
  bool unmapped;  // munmap() ran: the buffer is detached and the finalizer has nothing to unmap
} mapping_t;

// Marks the buffers mmap() returns, so that munmap() refuses any other wrapped object.
static const napi_type_tag MAPPING_TAG = {0x737061726b6c6572ull, 0x6d6d617070696e67ull};

static void mapping_finalize(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  mapping_t* m = (mapping_t*)data;
  if (!m->unmapped) munmap(m->address, m->length);
  free(m);
}

// mmap(length, prot, flags, fd, offset) -> { buffer: ArrayBuffer, address: bigint } | -errno.
// The ArrayBuffer is the mapping itself (no copy); it is unmapped by munmap() or, failing that,
// when garbage-collected.
static napi_value js_mmap(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  INT_ARG(env, argv[0], length);
  INT_ARG(env, argv[1], prot);
  INT_ARG(env, argv[2], flags);
  INT_ARG(env, argv[3], fd);
  INT_ARG(env, argv[4], offset);
  if (length <= 0) return make_int64(env, -EINVAL);
  mapping_t* m = calloc(1, sizeof *m);
  if (m == NULL) return make_int64(env, -ENOMEM);
  // Safety: a fresh mapping chosen by the kernel (addr NULL), never MAP_FIXED, so no existing
  // host memory is replaced.
  void* p = mmap(NULL, (size_t)length, (int)prot, (int)flags, (int)fd, (off_t)offset);
  if (p == MAP_FAILED) {
    int err = errno;
    free(m);
    return make_int64(env, -err);
  }
  m->address = p;
  m->length = (size_t)length;
  napi_value buffer, address, out;
  // Not napi_create_external_arraybuffer: V8 counts that as external memory, and guest RAM's
  // size set off a full collection during VM set-up (see native/uncounted-buffer.cc).
  if (create_uncounted_arraybuffer(env, p, (size_t)length, &buffer) != napi_ok ||
      napi_type_tag_object(env, buffer, &MAPPING_TAG) != napi_ok ||
      napi_wrap(env, buffer, m, mapping_finalize, NULL, NULL) != napi_ok) {
    // The buffer never reaches JS, so nothing can use the mapping after this.
    munmap(p, (size_t)length);
    free(m);
    NAPI_CALL(env, napi_generic_failure);
  }
  NAPI_CALL(env, napi_create_bigint_uint64(env, (uint64_t)(uintptr_t)p, &address));
  NAPI_CALL(env, napi_create_object(env, &out));
  NAPI_CALL(env, napi_set_named_property(env, out, "buffer", buffer));
  NAPI_CALL(env, napi_set_named_property(env, out, "address", address));
  return out;
}

// munmap(buffer) -> 0 | -errno: unmaps a buffer from mmap() now, detaching it first so that
// every view of it has length 0 from here on (no access to unmapped memory). -EINVAL for an
// ArrayBuffer not from mmap() or unmapped already. Whatever else holds the address (a KVM
// memory slot) must be done with it first.
static napi_value js_munmap(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  bool is_buffer = false;
  NAPI_CALL(env, napi_is_arraybuffer(env, argv[0], &is_buffer));
  if (!is_buffer) {
    napi_throw_type_error(env, NULL, "Expected an ArrayBuffer: buffer");
    return NULL;
  }
  bool tagged = false;
  NAPI_CALL(env, napi_check_object_type_tag(env, argv[0], &MAPPING_TAG, &tagged));
  void* data = NULL;
  if (!tagged || napi_unwrap(env, argv[0], &data) != napi_ok || data == NULL) return make_int64(env, -EINVAL);
  mapping_t* m = (mapping_t*)data;
  if (m->unmapped) return make_int64(env, -EINVAL);
  if (napi_detach_arraybuffer(env, argv[0]) != napi_ok) return make_int64(env, -EINVAL);
  if (munmap(m->address, m->length) < 0) return make_int64(env, -errno);  // the finalizer tries again
  m->unmapped = true;
  return make_int64(env, 0);
}

// madvise(bytes, advice) -> 0 | -errno, over the pages of a Uint8Array or Buffer. Other views
// are refused (TypeError): the range is a byte range.
static napi_value js_madvise(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  bool is_typed = false;
  NAPI_CALL(env, napi_is_typedarray(env, argv[0], &is_typed));
  void* data = NULL;
  size_t length = 0;
  napi_typedarray_type type = napi_int8_array;
  if (is_typed) NAPI_CALL(env, napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL));
  if (type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "Expected a Uint8Array or Buffer: bytes");
    return NULL;
  }
  INT_ARG(env, argv[1], advice);
  return make_int64(env, madvise(data, length, (int)advice) < 0 ? -errno : 0);
}

// mincore(bytes, out) -> 0 | -errno: out[i] bit 0 set when page i of the page-aligned range of
// a Uint8Array is resident (anonymous memory the guest touched, or a file page in the cache).
// `out` must hold one byte per page of `bytes` (-EINVAL otherwise); both must be Uint8Arrays.
static napi_value js_mincore(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  void* data[2] = {NULL, NULL};
  size_t length[2] = {0, 0};
  for (int i = 0; i < 2; i++) {
    bool is_typed = false;
    napi_typedarray_type type = napi_int8_array;
    NAPI_CALL(env, napi_is_typedarray(env, argv[i], &is_typed));
    if (is_typed) NAPI_CALL(env, napi_get_typedarray_info(env, argv[i], &type, &length[i], &data[i], NULL, NULL));
    if (type != napi_uint8_array) {
      napi_throw_type_error(env, NULL, i == 0 ? "Expected a Uint8Array or Buffer: bytes" : "Expected a Uint8Array: out");
      return NULL;
    }
  }
  long page = sysconf(_SC_PAGESIZE);
  if (((uintptr_t)data[0] % (uintptr_t)page) != 0) return make_int64(env, -EINVAL);
  size_t pages = (length[0] + (size_t)page - 1) / (size_t)page;
  if (length[1] < pages) return make_int64(env, -EINVAL);
  if (pages == 0) return make_int64(env, 0);
  return make_int64(env, mincore(data[0], length[0], (unsigned char*)data[1]) < 0 ? -errno : 0);
}

// availableCpus() -> the CPUs this process may run on (sched_getaffinity), as Node's
// os.availableParallelism() answers, without loading node:os into every VMM.
static napi_value js_available_cpus(napi_env env, napi_callback_info info) {
  (void)info;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return make_int64(env, CPU_COUNT(&set));
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  return make_int64(env, online > 0 ? online : 1);
}

// addressOf(typedArray) -> bigint host address of its first byte (for ioctls whose struct
// carries a pointer, such as a dirty-log bitmap).
static napi_value js_address_of(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  void* data;
  size_t length;
  napi_typedarray_type type;
  NAPI_CALL(env, napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL));
  napi_value out;
  NAPI_CALL(env, napi_create_bigint_uint64(env, (uint64_t)(uintptr_t)data, &out));
  return out;
}

// eventfd(initval, flags) -> fd | -errno
static napi_value js_eventfd(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  INT_ARG(env, argv[0], initval);
  INT_ARG(env, argv[1], flags);
  int fd = eventfd((unsigned)initval, (int)flags | EFD_CLOEXEC);
  return make_int64(env, fd < 0 ? -errno : fd);
}

// eventfdWrite(fd, value) -> 0 | -errno: raise an irqfd or signal an ioeventfd consumer.
static napi_value js_eventfd_write(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  INT_ARG(env, argv[0], fd);
  INT_ARG(env, argv[1], value);
  uint64_t v = (uint64_t)value;
  return make_int64(env, write((int)fd, &v, sizeof v) < 0 ? -errno : 0);
}

// monotonicNs() -> bigint CLOCK_MONOTONIC, the clock the vCPU thread stamps exits with.
static napi_value js_monotonic_ns(napi_env env, napi_callback_info info) {
  (void)info;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  napi_value out;
  NAPI_CALL(env, napi_create_bigint_uint64(env, (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec, &out));
  return out;
}

// eventfdRead(fd) -> counter value as a number (0 when nothing was pending) | -errno.
static napi_value js_eventfd_read(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  INT_ARG(env, argv[0], fd);
  uint64_t v = 0;
  ssize_t n = read((int)fd, &v, sizeof v);
  if (n < 0) return make_int64(env, errno == EAGAIN ? 0 : -errno);
  return make_int64(env, (int64_t)v);
}

static napi_value init(napi_env env, napi_value exports) {
  vcpu_install_kick_signal();

  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ioctl", NULL, js_ioctl, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mmap", NULL, js_mmap, NULL, NULL, NULL, napi_enumerable, NULL},
      {"munmap", NULL, js_munmap, NULL, NULL, NULL, napi_enumerable, NULL},
      {"madvise", NULL, js_madvise, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mincore", NULL, js_mincore, NULL, NULL, NULL, napi_enumerable, NULL},
      {"availableCpus", NULL, js_available_cpus, NULL, NULL, NULL, napi_enumerable, NULL},
      {"addressOf", NULL, js_address_of, NULL, NULL, NULL, napi_enumerable, NULL},
      {"eventfd", NULL, js_eventfd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"eventfdWrite", NULL, js_eventfd_write, NULL, NULL, NULL, napi_enumerable, NULL},
      {"watchFd", NULL, js_watch_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"updateWatch", NULL, js_update_watch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unwatchFd", NULL, js_unwatch_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"read", NULL, js_read, NULL, NULL, NULL, napi_enumerable, NULL},
      {"write", NULL, js_write, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lseek", NULL, js_lseek, NULL, NULL, NULL, napi_enumerable, NULL},
      {"socket", NULL, js_socket, NULL, NULL, NULL, napi_enumerable, NULL},
      {"connectUnix", NULL, js_connect_unix, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bindUnix", NULL, js_bind_unix, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listen", NULL, js_listen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"accept", NULL, js_accept, NULL, NULL, NULL, napi_enumerable, NULL},
      {"userfaultfd", NULL, js_userfaultfd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readv", NULL, js_readv, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writev", NULL, js_writev, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendmsg", NULL, js_sendmsg, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recvmsg", NULL, js_recvmsg, NULL, NULL, NULL, napi_enumerable, NULL},
      {"socketpair", NULL, js_socketpair, NULL, NULL, NULL, napi_enumerable, NULL},
      {"eventfdRead", NULL, js_eventfd_read, NULL, NULL, NULL, napi_enumerable, NULL},
      {"monotonicNs", NULL, js_monotonic_ns, NULL, NULL, NULL, napi_enumerable, NULL},
      {"vcpuStart", NULL, js_vcpu_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"vcpuResume", NULL, js_vcpu_resume, NULL, NULL, NULL, napi_enumerable, NULL},
      {"vcpuResumeAndWait", NULL, js_vcpu_resume_and_wait, NULL, NULL, NULL, napi_enumerable, NULL},
      {"vcpuResumeWatched", NULL, js_vcpu_resume_watched, NULL, NULL, NULL, napi_enumerable, NULL},
      {"vcpuAwaitExit", NULL, js_vcpu_await_exit, NULL, NULL, NULL, napi_enumerable, NULL},
      {"vcpuKick", NULL, js_vcpu_kick, NULL, NULL, NULL, napi_enumerable, NULL},
      {"vcpuJoin", NULL, js_vcpu_join, NULL, NULL, NULL, napi_enumerable, NULL},
      {"vcpuSetFastPio", NULL, js_vcpu_set_fast_pio, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fastPioCreate", NULL, js_fast_pio_create, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mallocTrim", NULL, js_malloc_trim, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lowMemoryNotification", NULL, js_low_memory_notification, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setV8Flags", NULL, js_set_v8_flags, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mapFileLatin1", NULL, js_map_file_latin1, NULL, NULL, NULL, napi_enumerable, NULL},
      {"chroot", NULL, js_chroot, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pivotRoot", NULL, js_pivot_root, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mount", NULL, js_mount, NULL, NULL, NULL, napi_enumerable, NULL},
      {"umount2", NULL, js_umount2, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unshare", NULL, js_unshare, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setns", NULL, js_setns, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mknod", NULL, js_mknod, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setrlimit", NULL, js_setrlimit, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setresuid", NULL, js_setresuid, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setresgid", NULL, js_setresgid, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setgroups", NULL, js_setgroups, NULL, NULL, NULL, napi_enumerable, NULL},
      {"prctl", NULL, js_prctl, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setsid", NULL, js_setsid, NULL, NULL, NULL, napi_enumerable, NULL},
      {"closeRange", NULL, js_close_range, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fcntl", NULL, js_fcntl, NULL, NULL, NULL, napi_enumerable, NULL},
      {"execve", NULL, js_execve, NULL, NULL, NULL, napi_enumerable, NULL},
      {"seccompSetFilter", NULL, js_seccomp_set_filter, NULL, NULL, NULL, napi_enumerable, NULL},
      {"installSigsysHandler", NULL, js_install_sigsys_handler, NULL, NULL, NULL, napi_enumerable, NULL},
      {"rawSyscall", NULL, js_raw_syscall, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
