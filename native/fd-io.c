// Byte I/O on fds for the devices that talk to the host on the event loop (TAP devices, Unix
// sockets): read/write, their scatter-gather forms, sendmsg/recvmsg with SCM_RIGHTS, and
// socketpair. The buffers are used in place (typically views of guest RAM: no copy), and every
// call returns the byte count or -errno, -EAGAIN included: nothing here throws for an errno,
// and nothing decides what to do about one.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <node_api.h>

#include "shim.h"

// The most fds one SCM_RIGHTS message carries (the kernel's SCM_MAX_FD).
#define MAX_PASSED_FDS 253
// iovecs up to this many live on the stack; more (up to IOV_MAX) are allocated.
#define LOCAL_IOVECS 16
// gather_iovecs's answer when it threw (argument-type mistake).
#define THREW 1

typedef struct {
  struct iovec* iov;
  size_t count;
  struct iovec local[LOCAL_IOVECS];
} iovecs_t;

static void free_iovecs(iovecs_t* v) {
  if (v->iov != v->local) free(v->iov);
}

// Fills `out` from a JS array of byte views: 0, -EINVAL for more than IOV_MAX (what the kernel
// would answer), -ENOMEM, or THREW.
static int gather_iovecs(napi_env env, napi_value array, iovecs_t* out) {
  out->iov = out->local;
  out->count = 0;
  bool is_array = false;
  uint32_t n = 0;
  if (napi_is_array(env, array, &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, array, &n) != napi_ok) {
    napi_throw_type_error(env, NULL, "Expected an array of TypedArrays, Buffers or DataViews: bufs");
    return THREW;
  }
  if (n > IOV_MAX) return -EINVAL;
  if (n > LOCAL_IOVECS) {
    out->iov = calloc(n, sizeof *out->iov);
    if (out->iov == NULL) {
      out->iov = out->local;
      return -ENOMEM;
    }
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value element;
    if (napi_get_element(env, array, i, &element) != napi_ok ||
        !view_bytes(env, element, "bufs[i]", &out->iov[i].iov_base, &out->iov[i].iov_len)) {
      free_iovecs(out);
      return THREW;
    }
  }
  out->count = n;
  return 0;
}

// read(fd, buf) -> bytes read (0 at end of file) | -errno (-EAGAIN: nothing to read now).
napi_value js_read(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  INT_ARG(env, argv[0], fd);
  void* data;
  size_t bytes;
  if (!view_bytes(env, argv[1], "buf", &data, &bytes)) return NULL;
  ssize_t n = read((int)fd, data, bytes);
  return make_int64(env, n < 0 ? -errno : n);
}

// lseek(fd, offset, whence) -> the new offset | -errno (SEEK_DATA/SEEK_HOLE: -ENXIO past the last).
napi_value js_lseek(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  INT_ARG(env, argv[0], fd);
  INT_ARG(env, argv[1], offset);
  INT_ARG(env, argv[2], whence);
  off_t r = lseek((int)fd, (off_t)offset, (int)whence);
  return make_int64(env, r < 0 ? -errno : r);
}

// write(fd, buf) -> bytes written | -errno (-EAGAIN: no room now).
napi_value js_write(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  INT_ARG(env, argv[0], fd);
  void* data;
  size_t bytes;
  if (!view_bytes(env, argv[1], "buf", &data, &bytes)) return NULL;
  ssize_t n = write((int)fd, data, bytes);
  return make_int64(env, n < 0 ? -errno : n);
}

// readv(fd, bufs) / writev(fd, bufs) -> bytes | -errno.
static napi_value vector_io(napi_env env, napi_callback_info info, bool writing) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  INT_ARG(env, argv[0], fd);
  iovecs_t v;
  int err = gather_iovecs(env, argv[1], &v);
  if (err == THREW) return NULL;
  if (err < 0) return make_int64(env, err);
  ssize_t n = writing ? writev((int)fd, v.iov, (int)v.count) : readv((int)fd, v.iov, (int)v.count);
  int saved = errno;
  free_iovecs(&v);
  return make_int64(env, n < 0 ? -saved : n);
}

napi_value js_readv(napi_env env, napi_callback_info info) { return vector_io(env, info, false); }
napi_value js_writev(napi_env env, napi_callback_info info) { return vector_io(env, info, true); }

// Room for the most fds one message carries, aligned as a cmsghdr.
typedef union {
  struct cmsghdr align;
  char bytes[CMSG_SPACE(MAX_PASSED_FDS * sizeof(int))];
} fd_control_t;

// sendmsg(fd, bufs, fds) -> bytes sent | -errno. Never blocks (MSG_DONTWAIT: -EAGAIN when the
// socket is full) and never raises SIGPIPE (MSG_NOSIGNAL: -EPIPE). `fds` go as one SCM_RIGHTS
// message (at most 253, else -EINVAL); on a stream socket they travel with the first byte, so
// send at least one.
napi_value js_sendmsg(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  INT_ARG(env, argv[0], fd);
  bool is_array = false;
  uint32_t nfds = 0;
  if (napi_is_array(env, argv[2], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[2], &nfds) != napi_ok) {
    napi_throw_type_error(env, NULL, "Expected an array of fds: fds");
    return NULL;
  }
  if (nfds > MAX_PASSED_FDS) return make_int64(env, -EINVAL);
  fd_control_t control;
  memset(&control, 0, sizeof control);
  int* passed = (int*)CMSG_DATA(&control.align);
  for (uint32_t i = 0; i < nfds; i++) {
    napi_value element;
    int64_t passed_fd;
    if (napi_get_element(env, argv[2], i, &element) != napi_ok || !arg_int64(env, element, &passed_fd)) {
      napi_throw_type_error(env, NULL, "Expected an integer fd in fds");
      return NULL;
    }
    passed[i] = (int)passed_fd;
  }
  iovecs_t v;
  int err = gather_iovecs(env, argv[1], &v);
  if (err == THREW) return NULL;
  if (err < 0) return make_int64(env, err);
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = v.iov;
  msg.msg_iovlen = v.count;
  if (nfds > 0) {
    control.align.cmsg_level = SOL_SOCKET;
    control.align.cmsg_type = SCM_RIGHTS;
    control.align.cmsg_len = CMSG_LEN(nfds * sizeof(int));
    msg.msg_control = &control;
    msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
  }
  ssize_t n = sendmsg((int)fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  int saved = errno;
  free_iovecs(&v);
  return make_int64(env, n < 0 ? -saved : n);
}

// Closes every fd an SCM_RIGHTS message installed (when the answer cannot be built).
static void close_received(struct msghdr* msg) {
  for (struct cmsghdr* c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    int* fds = (int*)CMSG_DATA(c);
    for (size_t i = 0; i < count; i++) close(fds[i]);
  }
}

// recvmsg(fd, bufs, maxFds) -> { bytes, fds, flags } | -errno. Never blocks (MSG_DONTWAIT:
// -EAGAIN when nothing is queued); bytes 0 with no fds is the end of the stream. Received fds
// are close-on-exec (MSG_CMSG_CLOEXEC) and the caller owns them. Room is made for maxFds fds
// (0..253, else -EINVAL); the kernel closes those that do not fit and sets MSG_CTRUNC in
// `flags` (msg_flags: MSG_TRUNC for a datagram cut short, too).
napi_value js_recvmsg(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  INT_ARG(env, argv[0], fd);
  INT_ARG(env, argv[2], max_fds);
  if (max_fds < 0 || max_fds > MAX_PASSED_FDS) return make_int64(env, -EINVAL);
  iovecs_t v;
  int err = gather_iovecs(env, argv[1], &v);
  if (err == THREW) return NULL;
  if (err < 0) return make_int64(env, err);
  fd_control_t control;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = v.iov;
  msg.msg_iovlen = v.count;
  if (max_fds > 0) {
    // CMSG_LEN, not CMSG_SPACE: the kernel fills whatever room follows the header, and the
    // padding CMSG_SPACE adds would take one fd more than asked for.
    msg.msg_control = &control;
    msg.msg_controllen = CMSG_LEN((size_t)max_fds * sizeof(int));
  }
  ssize_t n = recvmsg((int)fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  int saved = errno;
  free_iovecs(&v);
  if (n < 0) return make_int64(env, -saved);

  napi_value out, fds, value;
  uint32_t count = 0;
  if (napi_create_object(env, &out) != napi_ok || napi_create_array(env, &fds) != napi_ok) goto fail;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t received = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    int* data = (int*)CMSG_DATA(c);
    for (size_t i = 0; i < received; i++) {
      if (napi_create_int32(env, data[i], &value) != napi_ok || napi_set_element(env, fds, count++, value) != napi_ok) goto fail;
    }
  }
  if (napi_create_int64(env, n, &value) != napi_ok || napi_set_named_property(env, out, "bytes", value) != napi_ok ||
      napi_set_named_property(env, out, "fds", fds) != napi_ok ||
      napi_create_int32(env, msg.msg_flags, &value) != napi_ok || napi_set_named_property(env, out, "flags", value) != napi_ok) {
    goto fail;
  }
  return out;
fail:
  // The fds would leak with no one to own them.
  close_received(&msg);
  NAPI_CALL(env, napi_generic_failure);
  return NULL;
}

// socketpair(type) -> [fd, fd] | -errno: a connected AF_UNIX pair, close-on-exec. `type` is
// SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET, optionally | SOCK_NONBLOCK.
napi_value js_socketpair(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  INT_ARG(env, argv[0], type);
  int sv[2];
  if (socketpair(AF_UNIX, (int)type | SOCK_CLOEXEC, 0, sv) < 0) return make_int64(env, -errno);
  napi_value out, a, b;
  if (napi_create_array_with_length(env, 2, &out) != napi_ok || napi_create_int32(env, sv[0], &a) != napi_ok ||
      napi_create_int32(env, sv[1], &b) != napi_ok || napi_set_element(env, out, 0, a) != napi_ok ||
      napi_set_element(env, out, 1, b) != napi_ok) {
    close(sv[0]);
    close(sv[1]);
    NAPI_CALL(env, napi_generic_failure);
  }
  return out;
}
