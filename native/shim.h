// What the shim's C files share: the argument and error helpers, and the functions that
// native/memory.c and native/vcpu.c define for the property table in native/sparkler.c.
#ifndef SPARKLER_SHIM_H
#define SPARKLER_SHIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <node_api.h>

// Every napi_status is checked: a failure throws a JS error naming the call and returns NULL.
#define NAPI_CALL(env, call)                                                   \
  do {                                                                         \
    napi_status status_ = (call);                                              \
    if (status_ != napi_ok) {                                                  \
      const napi_extended_error_info* info_ = NULL;                            \
      napi_get_last_error_info((env), &info_);                                 \
      bool pending_;                                                           \
      napi_is_exception_pending((env), &pending_);                             \
      if (!pending_) {                                                         \
        const char* msg_ = info_ && info_->error_message ? info_->error_message \
                                                         : #call " failed";    \
        napi_throw_error((env), NULL, msg_);                                   \
      }                                                                        \
      return NULL;                                                             \
    }                                                                          \
  } while (0)

static inline napi_value make_int64(napi_env env, int64_t v) {
  napi_value out;
  NAPI_CALL(env, napi_create_int64(env, v, &out));
  return out;
}

// Reads argument i as an int64 (accepts a number or a bigint).
static inline bool arg_int64(napi_env env, napi_value v, int64_t* out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (t == napi_bigint) {
    bool lossless;
    return napi_get_value_bigint_int64(env, v, out, &lossless) == napi_ok;
  }
  return napi_get_value_int64(env, v, out) == napi_ok;
}

static inline bool get_args(napi_env env, napi_callback_info info, size_t want, napi_value* argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, "Too few arguments to a native call.");
    return false;
  }
  return true;
}

#define INT_ARG(env, v, name)                                             \
  int64_t name;                                                           \
  if (!arg_int64((env), (v), &name)) {                                    \
    napi_throw_type_error((env), NULL, "Expected an integer argument: " #name); \
    return NULL;                                                          \
  }

// The bytes of an ArrayBufferView (any TypedArray, Buffer or DataView): its data pointer and its
// length in BYTES (napi_get_typedarray_info counts elements). A detached view has length 0.
// Anything else throws a TypeError naming `what` and returns false.
static inline bool view_bytes(napi_env env, napi_value v, const char* what, void** data, size_t* bytes) {
  bool is_typed = false, is_view = false;
  if (napi_is_typedarray(env, v, &is_typed) == napi_ok && is_typed) {
    napi_typedarray_type type;
    size_t length;
    if (napi_get_typedarray_info(env, v, &type, &length, data, NULL, NULL) != napi_ok) return false;
    size_t element = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: element = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: element = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: element = 8; break;
      default: element = 1; break;
    }
    *bytes = length * element;
    return true;
  }
  if (napi_is_dataview(env, v, &is_view) == napi_ok && is_view) {
    return napi_get_dataview_info(env, v, bytes, data, NULL, NULL) == napi_ok;
  }
  char msg[128];
  snprintf(msg, sizeof msg, "Expected a TypedArray, Buffer or DataView: %s", what);
  napi_throw_type_error(env, NULL, msg);
  return false;
}

// native/fd-io.c
napi_value js_read(napi_env env, napi_callback_info info);
napi_value js_write(napi_env env, napi_callback_info info);
napi_value js_lseek(napi_env env, napi_callback_info info);
napi_value js_socket(napi_env env, napi_callback_info info);
napi_value js_connect_unix(napi_env env, napi_callback_info info);
napi_value js_bind_unix(napi_env env, napi_callback_info info);
napi_value js_listen(napi_env env, napi_callback_info info);
napi_value js_accept(napi_env env, napi_callback_info info);
napi_value js_userfaultfd(napi_env env, napi_callback_info info);
napi_value js_readv(napi_env env, napi_callback_info info);
napi_value js_writev(napi_env env, napi_callback_info info);
napi_value js_sendmsg(napi_env env, napi_callback_info info);
napi_value js_recvmsg(napi_env env, napi_callback_info info);
napi_value js_socketpair(napi_env env, napi_callback_info info);

// native/fd-watch.c
napi_value js_watch_fd(napi_env env, napi_callback_info info);
napi_value js_update_watch(napi_env env, napi_callback_info info);
napi_value js_unwatch_fd(napi_env env, napi_callback_info info);

// native/memory.c
// native/uncounted-buffer.cc: an ArrayBuffer over `data` that V8 leaves out of its external-memory
// count and never frees (the caller unmaps it from a finalizer).
napi_status create_uncounted_arraybuffer(napi_env env, void* data, size_t length, napi_value* result);

napi_value js_malloc_trim(napi_env env, napi_callback_info info);
napi_value js_low_memory_notification(napi_env env, napi_callback_info info);
napi_value js_set_v8_flags(napi_env env, napi_callback_info info);
napi_value js_map_file_latin1(napi_env env, napi_callback_info info);

// native/fast-pio.c
typedef struct fast_pio fast_pio_t;
napi_value js_fast_pio_create(napi_env env, napi_callback_info info);
bool fast_pio_handle(fast_pio_t* t, uint8_t* run, size_t run_len);
void fast_pio_ref(fast_pio_t* t);
fast_pio_t* fast_pio_from(napi_env env, napi_value buffer);
void fast_pio_unref(fast_pio_t* t);

// native/vcpu.c
void vcpu_install_kick_signal(void);
napi_value js_vcpu_start(napi_env env, napi_callback_info info);
napi_value js_vcpu_resume(napi_env env, napi_callback_info info);
napi_value js_vcpu_resume_and_wait(napi_env env, napi_callback_info info);
napi_value js_vcpu_resume_watched(napi_env env, napi_callback_info info);
napi_value js_vcpu_await_exit(napi_env env, napi_callback_info info);
napi_value js_vcpu_kick(napi_env env, napi_callback_info info);
napi_value js_vcpu_join(napi_env env, napi_callback_info info);
napi_value js_vcpu_set_fast_pio(napi_env env, napi_callback_info info);

// native/isolation.c
napi_value js_chroot(napi_env env, napi_callback_info info);
napi_value js_pivot_root(napi_env env, napi_callback_info info);
napi_value js_mount(napi_env env, napi_callback_info info);
napi_value js_umount2(napi_env env, napi_callback_info info);
napi_value js_unshare(napi_env env, napi_callback_info info);
napi_value js_setns(napi_env env, napi_callback_info info);
napi_value js_mknod(napi_env env, napi_callback_info info);
napi_value js_setrlimit(napi_env env, napi_callback_info info);
napi_value js_setresuid(napi_env env, napi_callback_info info);
napi_value js_setresgid(napi_env env, napi_callback_info info);
napi_value js_setgroups(napi_env env, napi_callback_info info);
napi_value js_prctl(napi_env env, napi_callback_info info);
napi_value js_setsid(napi_env env, napi_callback_info info);
napi_value js_close_range(napi_env env, napi_callback_info info);
napi_value js_fcntl(napi_env env, napi_callback_info info);
napi_value js_execve(napi_env env, napi_callback_info info);
napi_value js_seccomp_set_filter(napi_env env, napi_callback_info info);
napi_value js_install_sigsys_handler(napi_env env, napi_callback_info info);
napi_value js_raw_syscall(napi_env env, napi_callback_info info);

#endif
