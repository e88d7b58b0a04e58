/*
 * blkbench: the guest side of the block benchmark (bench/block/run.ts). Static, no libc
 * surprises in a busybox guest. One thread, queue depth 1, O_DIRECT, so each number is the
 * round trip of one request through the VMM: what differs between two VMMs on the same guest.
 *
 *   blkbench randread  DEV SECONDS           4 KiB reads at random aligned offsets -> IOPS
 *   blkbench seqread   DEV MIB [PASSES]      1 MiB reads over the first MIB, PASSES times -> MiB/s
 *   blkbench seqwrite  DEV MIB [PASSES]      the same with writes, then fdatasync -> MiB/s
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) { /* xorshift64: cheap, deterministic */
  rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
  return rng;
}

int main(int argc, char **argv) {
  if (argc != 4 && argc != 5) { fprintf(stderr, "usage: blkbench randread|seqread|seqwrite DEV N [PASSES]\n"); return 2; }
  int passes = argc == 5 ? atoi(argv[4]) : 1;
  const char *mode = argv[1];
  int writing = strcmp(mode, "seqwrite") == 0;
  int fd = open(argv[2], (writing ? O_RDWR : O_RDONLY) | O_DIRECT);
  if (fd < 0) { perror(argv[2]); return 1; }
  uint64_t size = 0;
  if (ioctl(fd, BLKGETSIZE64, &size) != 0) { perror("BLKGETSIZE64"); return 1; }
  size_t bs = strcmp(mode, "randread") == 0 ? 4096 : 1 << 20;
  void *buf;
  if (posix_memalign(&buf, 4096, bs) != 0) return 1;
  memset(buf, 0x5a, bs);
  double n = atof(argv[3]), t0 = now(), t;
  uint64_t ops = 0;
  if (strcmp(mode, "randread") == 0) {
    uint64_t blocks = size / bs;
    do {
      for (int i = 0; i < 64; i++, ops++) {
        if (pread(fd, buf, bs, (off_t)((next() % blocks) * bs)) != (ssize_t)bs) { perror("pread"); return 1; }
      }
      t = now() - t0;
    } while (t < n);
    printf("BENCH randread4k iops=%.0f ops=%llu seconds=%.3f\n", ops / t, (unsigned long long)ops, t);
  } else {
    uint64_t total = (uint64_t)n << 20;
    if (total > size) total = size - size % bs;
    for (int p = 0; p < passes; p++) {
      for (uint64_t off = 0; off < total; off += bs, ops++) {
        ssize_t r = writing ? pwrite(fd, buf, bs, (off_t)off) : pread(fd, buf, bs, (off_t)off);
        if (r != (ssize_t)bs) { perror(writing ? "pwrite" : "pread"); return 1; }
      }
    }
    total *= passes;
    if (writing && fdatasync(fd) != 0) { perror("fdatasync"); return 1; }
    t = now() - t0;
    printf("BENCH %s mib=%llu seconds=%.3f mibps=%.1f\n", mode, (unsigned long long)(total >> 20), t, (total >> 20) / t);
  }
  return 0;
}
