// Sparkler's native shim: one N-API function per syscall, fd watching on the main loop, and the
// property table. The vCPU threads and their hand-over are in native/vcpu.c; the calls about the
// VMM's own memory (malloc_trim, two entry points of the running node, the bundle mapped as an
// external string) in native/memory.c; the helpers all three use in native/shim.h.
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
#include <uv.h>

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

// ioctl(fd, request, arg) -> result | -errno. `arg` is an integer (passed by value) or a
// TypedArray/Buffer whose bytes the kernel reads and/or writes in place (the struct).
static napi_value js_ioctl(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  INT_ARG(env, argv[0], fd);
  INT_ARG(env, argv[1], request);
  bool is_typed;
  NAPI_CALL(env, napi_is_typedarray(env, argv[2], &is_typed));
  long ret;
  if (is_typed) {
    void* data;
    size_t length;
    napi_typedarray_type type;
    NAPI_CALL(env, napi_get_typedarray_info(env, argv[2], &type, &length, &data, NULL, NULL));
    // Safety: the kernel accesses at most _IOC_SIZE(request) bytes from `data`; TypeScript
    // sizes the buffer from the same struct layout that defines `request`.
    ret = ioctl((int)fd, (unsigned long)request, data);
  } else {
    INT_ARG(env, argv[2], value);
    ret = ioctl((int)fd, (unsigned long)request, (unsigned long)value);
  }
  return make_int64(env, ret < 0 ? -errno : ret);
}

static void unmap_finalizer(napi_env env, void* data, void* hint) {
  (void)env;
  munmap(data, (size_t)(uintptr_t)hint);
}

// mmap(length, prot, flags, fd, offset) -> { buffer: ArrayBuffer, address: bigint } | -errno.
// The ArrayBuffer is the mapping itself (no copy); it is unmapped when garbage-collected.
static napi_value js_mmap(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  INT_ARG(env, argv[0], length);
  INT_ARG(env, argv[1], prot);
  INT_ARG(env, argv[2], flags);
  INT_ARG(env, argv[3], fd);
  INT_ARG(env, argv[4], offset);
  if (length <= 0) return make_int64(env, -EINVAL);
  // Safety: a fresh mapping chosen by the kernel (addr NULL), never MAP_FIXED, so no existing
  // host memory is replaced.
  void* p = mmap(NULL, (size_t)length, (int)prot, (int)flags, (int)fd, (off_t)offset);
  if (p == MAP_FAILED) return make_int64(env, -errno);
  napi_value buffer, address, out;
  // Not napi_create_external_arraybuffer: V8 counts that as external memory, and guest RAM's
  // size set off a full collection during VM set-up (see native/uncounted-buffer.cc).
  NAPI_CALL(env, create_uncounted_arraybuffer(env, p, (size_t)length, &buffer));
  NAPI_CALL(env, napi_add_finalizer(env, buffer, p, unmap_finalizer, (void*)(uintptr_t)length, NULL));
  NAPI_CALL(env, napi_create_bigint_uint64(env, (uint64_t)(uintptr_t)p, &address));
  NAPI_CALL(env, napi_create_object(env, &out));
  NAPI_CALL(env, napi_set_named_property(env, out, "buffer", buffer));
  NAPI_CALL(env, napi_set_named_property(env, out, "address", address));
  return out;
}

// madvise(typedArray, advice) -> 0 | -errno, over the pages of the array.
static napi_value js_madvise(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  void* data;
  size_t length;
  napi_typedarray_type type;
  NAPI_CALL(env, napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL));
  INT_ARG(env, argv[1], advice);
  return make_int64(env, madvise(data, length, (int)advice) < 0 ? -errno : 0);
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

// ---------------------------------------------------------------------------------------
// fd watching on the main loop (uv_poll): the VMM thread learns that an ioeventfd (a queue
// notification), a TAP device or any pollable fd is readable without a thread per fd. The
// callback only says "readable"; TypeScript reads the fd itself.

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context async_context;
  int closed;
} watch_t;

static void watch_closed(uv_handle_t* handle) {
  watch_t* w = (watch_t*)handle->data;
  free(w);
}

static void watch_ready(uv_poll_t* poll, int status, int events) {
  watch_t* w = (watch_t*)poll->data;
  napi_handle_scope scope;
  if (napi_open_handle_scope(w->env, &scope) != napi_ok) return;
  napi_value cb, global, argv[1];
  if (napi_get_reference_value(w->env, w->callback, &cb) == napi_ok &&
      napi_get_global(w->env, &global) == napi_ok &&
      napi_create_int32(w->env, status < 0 ? status : events, &argv[0]) == napi_ok) {
    napi_value result;
    // make_callback so that exceptions and microtasks are handled as for any I/O callback.
    napi_make_callback(w->env, w->async_context, global, cb, 1, argv, &result);
  }
  napi_close_handle_scope(w->env, scope);
}

// watchFd(fd, onReadable(eventsOrError)) -> handle
static napi_value js_watch_fd(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  INT_ARG(env, argv[0], fd);
  uv_loop_t* loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  watch_t* w = calloc(1, sizeof *w);
  if (!w) {
    napi_throw_error(env, NULL, "Out of memory creating an fd watch.");
    return NULL;
  }
  w->env = env;
  if (uv_poll_init(loop, &w->poll, (int)fd) != 0) {
    free(w);
    napi_throw_error(env, NULL, "uv_poll_init failed: the fd cannot be polled.");
    return NULL;
  }
  w->poll.data = w;
  NAPI_CALL(env, napi_create_reference(env, argv[1], 1, &w->callback));
  napi_value resource_name;
  NAPI_CALL(env, napi_create_string_utf8(env, "sparkler-fd-watch", NAPI_AUTO_LENGTH, &resource_name));
  NAPI_CALL(env, napi_async_init(env, NULL, resource_name, &w->async_context));
  uv_poll_start(&w->poll, UV_READABLE, watch_ready);
  napi_value handle;
  NAPI_CALL(env, napi_create_external(env, w, NULL, NULL, &handle));
  return handle;
}

// unwatchFd(handle): stop watching; the handle must not be used again.
static napi_value js_unwatch_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  void* data = NULL;
  NAPI_CALL(env, napi_get_value_external(env, argv[0], &data));
  watch_t* w = (watch_t*)data;
  if (w && !w->closed) {
    w->closed = 1;
    uv_poll_stop(&w->poll);
    napi_delete_reference(env, w->callback);
    napi_async_destroy(env, w->async_context);
    uv_close((uv_handle_t*)&w->poll, watch_closed);
  }
  return NULL;
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
      {"madvise", NULL, js_madvise, NULL, NULL, NULL, napi_enumerable, NULL},
      {"availableCpus", NULL, js_available_cpus, NULL, NULL, NULL, napi_enumerable, NULL},
      {"addressOf", NULL, js_address_of, NULL, NULL, NULL, napi_enumerable, NULL},
      {"eventfd", NULL, js_eventfd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"eventfdWrite", NULL, js_eventfd_write, NULL, NULL, NULL, napi_enumerable, NULL},
      {"watchFd", NULL, js_watch_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unwatchFd", NULL, js_unwatch_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"eventfdRead", NULL, js_eventfd_read, NULL, NULL, NULL, napi_enumerable, NULL},
      {"monotonicNs", NULL, js_monotonic_ns, NULL, NULL, NULL, napi_enumerable, NULL},
      {"vcpuStart", NULL, js_vcpu_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"vcpuResume", NULL, js_vcpu_resume, NULL, NULL, NULL, napi_enumerable, NULL},
      {"vcpuResumeAndWait", NULL, js_vcpu_resume_and_wait, NULL, NULL, NULL, napi_enumerable, NULL},
      {"vcpuResumeWatched", NULL, js_vcpu_resume_watched, NULL, NULL, NULL, napi_enumerable, NULL},
      {"vcpuAwaitExit", NULL, js_vcpu_await_exit, NULL, NULL, NULL, napi_enumerable, NULL},
      {"vcpuKick", NULL, js_vcpu_kick, NULL, NULL, NULL, napi_enumerable, NULL},
      {"vcpuJoin", NULL, js_vcpu_join, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mallocTrim", NULL, js_malloc_trim, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lowMemoryNotification", NULL, js_low_memory_notification, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setV8Flags", NULL, js_set_v8_flags, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mapFileLatin1", NULL, js_map_file_latin1, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
