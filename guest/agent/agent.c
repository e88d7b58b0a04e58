/*
 * sparkler-agent: the guest side of the SDK (docs/agent.md). Listens on a vsock port (or a Unix
 * socket path, for host-side tests), one request per connection, a child process per connection.
 * Frames: u32 big-endian length (type byte + payload), u8 type, payload. It runs as root and
 * trusts its peer: only the host can reach a guest's vsock port. Test modes: -e (echo
 * server), -s (a sink: holds every connection it accepts and never reads, closing one only when
 * its peer shut it down; for the connection-limit and backpressure tests) and -c CID:PORT (a vsock client copying stdin/stdout), since
 * busybox has no vsock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

enum {
  T_EXEC = 1, T_STDIN = 2, T_STDIN_EOF = 3, T_WRITE_FILE = 4, T_READ_FILE = 5, T_PING = 6,
  T_STDOUT = 10, T_STDERR = 11, T_EXIT = 12, T_OK = 13, T_ERROR = 14, T_FILE_DATA = 15,
};
#define MAX_FRAME (64u << 20)
#define CHUNK 65536

static int read_full(int fd, void *buf, size_t n) {
  char *p = buf;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r; n -= (size_t)r;
  }
  return 0;
}

static int write_full(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t r = write(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r; n -= (size_t)r;
  }
  return 0;
}

static int send_frame(int fd, uint8_t type, const void *payload, uint32_t len) {
  uint8_t head[5] = { (uint8_t)((len + 1) >> 24), (uint8_t)((len + 1) >> 16), (uint8_t)((len + 1) >> 8), (uint8_t)(len + 1), type };
  if (write_full(fd, head, 5) < 0) return -1;
  return len ? write_full(fd, payload, len) : 0;
}

static int send_error(int fd, const char *what, int err) {
  char msg[512];
  int n = snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  return send_frame(fd, T_ERROR, msg, (uint32_t)n);
}

/* Reads one frame; the payload is malloc'd (NUL-terminated). -1 on EOF, a bad length or no memory. */
static int recv_frame(int fd, uint8_t *type, char **payload, uint32_t *len) {
  uint8_t head[5];
  if (read_full(fd, head, 5) < 0) return -1;
  uint32_t n = ((uint32_t)head[0] << 24) | ((uint32_t)head[1] << 16) | ((uint32_t)head[2] << 8) | head[3];
  if (n == 0 || n > MAX_FRAME) return -1;
  *type = head[4];
  *len = n - 1;
  *payload = malloc(*len + 1);
  if (!*payload) return -1;
  if (read_full(fd, *payload, *len) < 0) { free(*payload); return -1; }
  (*payload)[*len] = 0;
  return 0;
}

static uint32_t be32(const char *p) {
  const uint8_t *u = (const uint8_t *)p;
  return ((uint32_t)u[0] << 24) | ((uint32_t)u[1] << 16) | ((uint32_t)u[2] << 8) | u[3];
}

/* Splits `count` NUL-terminated strings from [*p, end) into a NULL-terminated array. */
static char **take_strings(char **p, char *end, uint32_t count) {
  if (count > 65536) return NULL;
  char **v = calloc(count + 1, sizeof *v);
  if (!v) return NULL;
  for (uint32_t i = 0; i < count; i++) {
    char *nul = memchr(*p, 0, (size_t)(end - *p));
    if (!nul) { free(v); return NULL; }
    v[i] = *p;
    *p = nul + 1;
  }
  return v;
}

/* EXEC payload: u32 argc, u32 envc (0: inherit), cwd\0 (empty: /), argv\0..., env\0... */
static void do_exec(int sock, char *payload, uint32_t len) {
  char *end = payload + len, *p = payload + 8;
  if (len < 9) { send_frame(sock, T_ERROR, "exec: the request is truncated", 30); return; }
  uint32_t argc = be32(payload), envc = be32(payload + 4);
  char **cwdv = take_strings(&p, end, 1);
  char **argv = cwdv ? take_strings(&p, end, argc) : NULL;
  char **envv = argv ? take_strings(&p, end, envc) : NULL;
  if (!envv || argc == 0) { send_frame(sock, T_ERROR, "exec: the request is malformed", 30); return; }
  int in[2], out[2], err[2], status_pipe[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) || pipe2(status_pipe, O_CLOEXEC)) { send_error(sock, "exec: pipe", errno); return; }
  pid_t pid = fork();
  if (pid < 0) { send_error(sock, "exec: fork", errno); return; }
  if (pid == 0) {
    dup2(in[0], 0); dup2(out[1], 1); dup2(err[1], 2);
    if (cwdv[0][0] && chdir(cwdv[0]) < 0) { int e = errno; write_full(status_pipe[1], &e, sizeof e); _exit(127); }
    if (envc) execvpe(argv[0], argv, envv); else execvp(argv[0], argv);
    int e = errno;
    write_full(status_pipe[1], &e, sizeof e);
    _exit(127);
  }
  close(in[0]); close(out[1]); close(err[1]); close(status_pipe[1]);
  int child_errno = 0;
  if (read(status_pipe[0], &child_errno, sizeof child_errno) == sizeof child_errno) {
    waitpid(pid, NULL, 0);
    send_error(sock, cwdv[0][0] && child_errno == ENOENT ? "exec: chdir or command" : "exec", child_errno);
    return;
  }
  close(status_pipe[0]);
  struct pollfd fds[3] = { { out[0], POLLIN, 0 }, { err[0], POLLIN, 0 }, { sock, POLLIN, 0 } };
  int open_pipes = 2, stdin_fd = in[1];
  char *buf = malloc(CHUNK);
  while (open_pipes > 0) {
    if (poll(fds, 3, -1) < 0) { if (errno == EINTR) continue; break; }
    for (int i = 0; i < 2; i++) {
      if (!fds[i].revents) continue;
      ssize_t n = read(fds[i].fd, buf, CHUNK);
      if (n > 0) {
        if (send_frame(sock, i == 0 ? T_STDOUT : T_STDERR, buf, (uint32_t)n) < 0) { kill(pid, SIGKILL); open_pipes = 0; break; }
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd); fds[i].fd = -1; open_pipes--;
      }
    }
    if (fds[2].revents) {
      uint8_t type; char *data; uint32_t dlen;
      if (recv_frame(sock, &type, &data, &dlen) < 0) {
        /* The host went away: nobody wants the output any more. */
        kill(pid, SIGKILL); fds[2].fd = -1;
        if (stdin_fd >= 0) { close(stdin_fd); stdin_fd = -1; }
        continue;
      }
      if (type == T_STDIN && stdin_fd >= 0) write_full(stdin_fd, data, dlen);
      if (type == T_STDIN_EOF && stdin_fd >= 0) { close(stdin_fd); stdin_fd = -1; }
      free(data);
    }
  }
  if (stdin_fd >= 0) close(stdin_fd);
  int status = 0;
  waitpid(pid, &status, 0);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  uint8_t c[4] = { (uint8_t)(code >> 24), (uint8_t)(code >> 16), (uint8_t)(code >> 8), (uint8_t)code };
  send_frame(sock, T_EXIT, c, 4);
}

/* WRITE_FILE payload: u32 mode, path\0, data. */
static void do_write_file(int sock, char *payload, uint32_t len) {
  char *nul = len > 4 ? memchr(payload + 4, 0, len - 4) : NULL;
  if (!nul) { send_frame(sock, T_ERROR, "write: the request is malformed", 31); return; }
  const char *path = payload + 4;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, be32(payload) & 07777);
  if (fd < 0) { send_error(sock, path, errno); return; }
  size_t n = (size_t)(payload + len - (nul + 1));
  if (write_full(fd, nul + 1, n) < 0 || close(fd) < 0) { send_error(sock, path, errno); return; }
  send_frame(sock, T_OK, NULL, 0);
}

/* READ_FILE payload: path. Answers FILE_DATA frames, then OK; or ERROR. */
static void do_read_file(int sock, char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) { send_error(sock, path, errno); return; }
  char *buf = malloc(CHUNK);
  for (;;) {
    ssize_t n = read(fd, buf, CHUNK);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { send_error(sock, path, errno); break; }
    if (n == 0) { send_frame(sock, T_OK, NULL, 0); break; }
    if (send_frame(sock, T_FILE_DATA, buf, (uint32_t)n) < 0) break;
  }
  close(fd);
}

static void serve(int sock) {
  uint8_t type; char *payload; uint32_t len;
  if (recv_frame(sock, &type, &payload, &len) < 0) return;
  switch (type) {
    case T_EXEC: do_exec(sock, payload, len); break;
    case T_WRITE_FILE: do_write_file(sock, payload, len); break;
    case T_READ_FILE: do_read_file(sock, payload); break;
    case T_PING: send_frame(sock, T_OK, "sparkler-agent 1", 16); break;
    default: send_frame(sock, T_ERROR, "unknown request type", 20);
  }
}

/* -e: echo every byte back (a test peer for vsock throughput). */
static void echo(int sock) {
  char *buf = malloc(CHUNK);
  for (;;) {
    ssize_t n = read(sock, buf, CHUNK);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || write_full(sock, buf, (size_t)n) < 0) return;
  }
}

/* -c CID:PORT: connect and copy stdin to the socket and the socket to stdout (like socat). */
static int connect_and_copy(const char *target) {
  struct sockaddr_vm a = { .svm_family = AF_VSOCK };
  a.svm_cid = (unsigned)strtoul(target, NULL, 10);
  const char *colon = strchr(target, ':');
  if (!colon) { fprintf(stderr, "sparkler-agent: -c wants CID:PORT\n"); return 2; }
  a.svm_port = (unsigned)strtoul(colon + 1, NULL, 10);
  int s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  /* Linux gives up on a vsock connect after 2 s; a loaded (or emulated) host may need longer. */
  struct timeval limit = { .tv_sec = 10 };
  if (s >= 0) setsockopt(s, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &limit, sizeof limit);
  if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("sparkler-agent: connect"); return 1; }
  struct pollfd fds[2] = { { 0, POLLIN, 0 }, { s, POLLIN, 0 } };
  char *buf = malloc(CHUNK);
  for (;;) {
    if (poll(fds, 2, -1) < 0) { if (errno == EINTR) continue; return 1; }
    if (fds[0].revents) {
      ssize_t n = read(0, buf, CHUNK);
      if (n <= 0) { shutdown(s, SHUT_WR); fds[0].fd = -1; }
      else if (write_full(s, buf, (size_t)n) < 0) return 1;
    }
    if (fds[1].revents) {
      ssize_t n = read(s, buf, CHUNK);
      if (n <= 0) return 0;
      if (write_full(1, buf, (size_t)n) < 0) return 1;
    }
  }
}

/* -s: accept and hold connections without reading; close one once the host shut it down. */
#define SINK_MAX 2048
static int sink(int lsock) {
  static struct pollfd fds[SINK_MAX + 1];
  int n = 1;
  fds[0] = (struct pollfd){ lsock, POLLIN, 0 };
  for (;;) {
    if (poll(fds, (nfds_t)n, -1) < 0) { if (errno == EINTR) continue; perror("sparkler-agent: poll"); return 1; }
    for (int i = n - 1; i >= 1; i--) {
      if (!(fds[i].revents & (POLLRDHUP | POLLHUP | POLLERR))) continue;
      close(fds[i].fd);
      fds[i] = fds[--n];
    }
    if (fds[0].revents & POLLIN) {
      int s = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
      if (s < 0) continue;
      if (n > SINK_MAX) { close(s); continue; }
      fds[n++] = (struct pollfd){ s, POLLRDHUP, 0 };
    }
  }
}

int main(int argc, char **argv) {
  unsigned port = 52;
  const char *unix_path = NULL;
  int opt, echo_mode = 0, sink_mode = 0;
  while ((opt = getopt(argc, argv, "p:u:esc:")) != -1) {
    if (opt == 'p') port = (unsigned)strtoul(optarg, NULL, 10);
    else if (opt == 'u') unix_path = optarg;
    else if (opt == 'e') echo_mode = 1;
    else if (opt == 's') sink_mode = 1;
    else if (opt == 'c') return connect_and_copy(optarg);
    else { fprintf(stderr, "usage: sparkler-agent [-p VSOCK_PORT] [-u UNIX_PATH] [-e | -s] | -c CID:PORT\n"); return 2; }
  }
  if (sink_mode) {
    /* More than the 1024 descriptors a process gets by default: the host may hold 1023 connections. */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
      nofile.rlim_cur = nofile.rlim_max;
      setrlimit(RLIMIT_NOFILE, &nofile);
    }
  }
  signal(SIGPIPE, SIG_IGN);
  signal(SIGCHLD, SIG_DFL);
  int lsock;
  if (unix_path) {
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(unix_path) >= sizeof a.sun_path) { fprintf(stderr, "sparkler-agent: path too long\n"); return 2; }
    strcpy(a.sun_path, unix_path);
    unlink(unix_path);
    lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lsock < 0 || bind(lsock, (struct sockaddr *)&a, sizeof a) < 0) { perror("sparkler-agent: bind"); return 1; }
  } else {
    struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_port = port, .svm_cid = VMADDR_CID_ANY };
    lsock = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lsock < 0 || bind(lsock, (struct sockaddr *)&a, sizeof a) < 0) { perror("sparkler-agent: bind"); return 1; }
  }
  if (listen(lsock, 128) < 0) { perror("sparkler-agent: listen"); return 1; }
  fprintf(stderr, "sparkler-agent: listening on %s %u\n", unix_path ? unix_path : "vsock port", unix_path ? 0 : port);
  if (sink_mode) return sink(lsock);
  for (;;) {
    int s = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
    if (s < 0) { if (errno == EINTR || errno == ECONNABORTED) continue; perror("sparkler-agent: accept"); sleep(1); continue; }
    pid_t pid = fork();
    if (pid == 0) { close(lsock); if (echo_mode) echo(s); else serve(s); _exit(0); }
    close(s);
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
  }
}
