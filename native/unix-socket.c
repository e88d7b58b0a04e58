// Unix stream sockets and userfaultfd, for the snapshot Uffd memory backend: one function per
// syscall, results as the syscall's (or -errno). No policy.
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <node_api.h>

#include "shim.h"

// A sockaddr_un for `path` (a JS string); false (and a thrown error) when it does not fit.
static bool unix_address(napi_env env, napi_value v, struct sockaddr_un* addr) {
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, addr->sun_path, sizeof addr->sun_path, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "Expected a socket path string.");
    return false;
  }
  if (len >= sizeof addr->sun_path - 1) {
    napi_throw_range_error(env, NULL, "The socket path is longer than a Unix socket address holds (107 bytes).");
    return false;
  }
  return true;
}

// socket(domain, type, protocol) -> fd | -errno.
napi_value js_socket(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  INT_ARG(env, argv[0], domain);
  INT_ARG(env, argv[1], type);
  INT_ARG(env, argv[2], protocol);
  int fd = socket((int)domain, (int)type, (int)protocol);
  return make_int64(env, fd < 0 ? -errno : fd);
}

// connect(fd, path) on an AF_UNIX socket -> 0 | -errno.
napi_value js_connect_unix(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  INT_ARG(env, argv[0], fd);
  struct sockaddr_un addr;
  if (!unix_address(env, argv[1], &addr)) return NULL;
  int r = connect((int)fd, (struct sockaddr*)&addr, sizeof addr);
  return make_int64(env, r < 0 ? -errno : 0);
}

// bind(fd, path) on an AF_UNIX socket -> 0 | -errno.
napi_value js_bind_unix(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  INT_ARG(env, argv[0], fd);
  struct sockaddr_un addr;
  if (!unix_address(env, argv[1], &addr)) return NULL;
  int r = bind((int)fd, (struct sockaddr*)&addr, sizeof addr);
  return make_int64(env, r < 0 ? -errno : 0);
}

// listen(fd, backlog) -> 0 | -errno.
napi_value js_listen(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  INT_ARG(env, argv[0], fd);
  INT_ARG(env, argv[1], backlog);
  int r = listen((int)fd, (int)backlog);
  return make_int64(env, r < 0 ? -errno : 0);
}

// accept4(fd, NULL, NULL, flags) -> fd | -errno.
napi_value js_accept(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  INT_ARG(env, argv[0], fd);
  INT_ARG(env, argv[1], flags);
  int r = accept4((int)fd, NULL, NULL, (int)flags);
  return make_int64(env, r < 0 ? -errno : r);
}

// userfaultfd(flags) -> fd | -errno.
napi_value js_userfaultfd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  INT_ARG(env, argv[0], flags);
  long r = syscall(SYS_userfaultfd, (int)flags);
  return make_int64(env, r < 0 ? -errno : r);
}
