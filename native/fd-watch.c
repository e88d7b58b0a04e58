// fd watching on the main loop (uv_poll): the VMM thread learns that an ioeventfd (a queue
// notification), a TAP device or a socket is readable, or writable again, without a thread per
// fd. The callback only says which; TypeScript does the I/O itself (native/fd-io.c).
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <node_api.h>
#include <uv.h>

#include "shim.h"

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context async_context;
  int fd;
  bool closed;  // unwatchFd ran: the poll handle is closing or closed
  int owners;   // the poll handle and the JS handle each hold one; freed at 0
} watch_t;

static void watch_release(watch_t* w) {
  if (--w->owners == 0) free(w);
}

static void watch_handle_closed(uv_handle_t* handle) { watch_release((watch_t*)handle->data); }

// The JS handle may be collected while the fd is still watched (nobody called unwatchFd):
// the watch then goes on, and the record outlives the handle.
static void watch_handle_finalized(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  watch_release((watch_t*)data);
}

// Stops the watch and frees its JS resources; the record goes when libuv has closed the handle.
static void watch_close(napi_env env, watch_t* w) {
  w->closed = true;
  uv_poll_stop(&w->poll);
  if (w->callback) napi_delete_reference(env, w->callback);
  if (w->async_context) napi_async_destroy(env, w->async_context);
  w->callback = NULL;
  w->async_context = NULL;
  uv_close((uv_handle_t*)&w->poll, watch_handle_closed);
}

static void watch_ready(uv_poll_t* poll, int status, int events) {
  watch_t* w = (watch_t*)poll->data;
  if (w->closed) return;
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

// Throws "Cannot watch fd N: <call> failed: <uv_strerror> (<name>)." with code EWATCHFD.
static void throw_uv(napi_env env, int fd, const char* call, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "Cannot watch fd %d: %s failed: %s (%s).", fd, call, uv_strerror(err), uv_err_name(err));
  napi_throw_error(env, "EWATCHFD", msg);
}

// The event mask: undefined -> UV_READABLE; a number 0..3 (UV_READABLE 1 | UV_WRITABLE 2);
// 'r', 'w' or 'rw'. Returns -1 after throwing.
static int events_arg(napi_env env, napi_value v, bool allow_none) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  int events = -1;
  if (t == napi_undefined) {
    events = UV_READABLE;
  } else if (t == napi_number) {
    int32_t n;
    if (napi_get_value_int32(env, v, &n) == napi_ok && n >= 0 && n <= (UV_READABLE | UV_WRITABLE)) events = n;
  } else if (t == napi_string) {
    char s[4];
    size_t len;
    if (napi_get_value_string_utf8(env, v, s, sizeof s, &len) == napi_ok) {
      if (strcmp(s, "r") == 0) events = UV_READABLE;
      else if (strcmp(s, "w") == 0) events = UV_WRITABLE;
      else if (strcmp(s, "rw") == 0) events = UV_READABLE | UV_WRITABLE;
    }
  }
  if (events < 0 || (events == 0 && !allow_none)) {
    napi_throw_range_error(env, "EWATCHEVENTS",
                           allow_none ? "Watch events must be 'r', 'w', 'rw' or a mask of 0..3."
                                      : "Watch events must be 'r', 'w', 'rw' or a mask of 1..3.");
    return -1;
  }
  return events;
}

// watchFd(fd, onReady(eventsOrError), events = 'r') -> handle. The callback gets the ready
// events (UV_READABLE 1 | UV_WRITABLE 2) or a negative errno. Watching is level-triggered: a
// writable watch fires on every loop turn while the fd is writable, so narrow it with
// updateWatch once the pending write went through. libuv makes the fd non-blocking, and one
// fd can have only one watch (a second is refused, EEXIST). A failure throws EWATCHFD.
napi_value js_watch_fd(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  size_t argc = 3;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "Too few arguments to a native call.");
    return NULL;
  }
  INT_ARG(env, argv[0], fd);
  napi_valuetype cb_type;
  NAPI_CALL(env, napi_typeof(env, argv[1], &cb_type));
  if (cb_type != napi_function) {
    napi_throw_type_error(env, NULL, "Expected a function: onReady");
    return NULL;
  }
  napi_value events_value;
  if (argc < 3) NAPI_CALL(env, napi_get_undefined(env, &events_value));
  else events_value = argv[2];
  int events = events_arg(env, events_value, false);
  if (events < 0) return NULL;
  uv_loop_t* loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));

  watch_t* w = calloc(1, sizeof *w);
  if (!w) {
    napi_throw_error(env, "EWATCHFD", "Out of memory creating an fd watch.");
    return NULL;
  }
  w->env = env;
  w->fd = (int)fd;
  int err = uv_poll_init(loop, &w->poll, (int)fd);
  if (err != 0) {  // nothing was registered with the loop
    free(w);
    throw_uv(env, (int)fd, "uv_poll_init", err);
    return NULL;
  }
  w->poll.data = w;
  w->owners = 1;  // the poll handle
  napi_value resource_name, handle;
  if (napi_create_reference(env, argv[1], 1, &w->callback) != napi_ok ||
      napi_create_string_utf8(env, "sparkler-fd-watch", NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_async_init(env, NULL, resource_name, &w->async_context) != napi_ok) {
    watch_close(env, w);
    NAPI_CALL(env, napi_generic_failure);
  }
  err = uv_poll_start(&w->poll, events, watch_ready);
  if (err != 0) {
    watch_close(env, w);
    throw_uv(env, (int)fd, "uv_poll_start", err);
    return NULL;
  }
  if (napi_create_external(env, w, watch_handle_finalized, NULL, &handle) != napi_ok) {
    watch_close(env, w);
    NAPI_CALL(env, napi_generic_failure);
  }
  w->owners++;  // the JS handle
  return handle;
}

static watch_t* get_watch(napi_env env, napi_value handle) {
  void* data = NULL;
  if (napi_get_value_external(env, handle, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "Expected a watch handle.");
    return NULL;
  }
  return (watch_t*)data;
}

// updateWatch(handle, events): watch for other events from now on; 0 pauses the watch (the
// handle stays usable). Throws EWATCHFD if libuv refuses, or if the watch was unwatched.
napi_value js_update_watch(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  watch_t* w = get_watch(env, argv[0]);
  if (!w) return NULL;
  int events = events_arg(env, argv[1], true);
  if (events < 0) return NULL;
  if (w->closed) {
    char msg[128];
    snprintf(msg, sizeof msg, "Cannot update the watch of fd %d: it was stopped with unwatchFd.", w->fd);
    napi_throw_error(env, "EWATCHFD", msg);
    return NULL;
  }
  int err = events == 0 ? uv_poll_stop(&w->poll) : uv_poll_start(&w->poll, events, watch_ready);
  if (err != 0) {
    throw_uv(env, w->fd, events == 0 ? "uv_poll_stop" : "uv_poll_start", err);
    return NULL;
  }
  return NULL;
}

// unwatchFd(handle): stop watching (no callback after this returns). Again is a no-op.
napi_value js_unwatch_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  watch_t* w = get_watch(env, argv[0]);
  if (!w) return NULL;
  if (!w->closed) watch_close(env, w);
  return NULL;
}
