/*
 * exit-floor: the C floor of the exit round-trip benchmark (src/bench/exits.ts).
 *
 * Boots the same guest code as the Sparkler run, in the same 64-bit state (Firecracker's boot
 * GDT at 0x500, identity page tables at 0x9000/0xa000/0xb000, code at 16 MiB), and services its
 * exits in the tightest possible loop: KVM_RUN on the calling thread, a switch on exit_reason,
 * nothing else. The guest marks the start and the end of its loop of N port writes with a byte
 * write of 123 to 0xC000_0000 (an MMIO exit), so the timed span is exactly the span Sparkler's
 * boot timer reports, and the program prints one JSON line:
 *
 *   {"exits":N,"ns":T,"ns_per_exit":T/N,"cpu_ns":C}
 *
 * Usage: exit-floor CODE_FILE    (CODE_FILE: the raw guest code, loaded at 16 MiB)
 * Built at bench time: gcc -O2 -o exit-floor exit-floor.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM_SIZE (128ul << 20)
#define CODE_ADDR 0x1000000ul
#define GDT_ADDR 0x500ul
#define IDT_ADDR 0x520ul
#define PML4_ADDR 0x9000ul
#define PDPT_ADDR 0xa000ul
#define PD_ADDR 0xb000ul
#define BOOT_TIMER 0xc0000000ul

static void die(const char *what) {
  fprintf(stderr, "exit-floor: %s: %s\n", what, strerror(errno));
  exit(1);
}

static uint64_t now_ns(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static struct kvm_segment segment(uint16_t selector, uint8_t type, uint8_t s, uint8_t l, uint8_t db) {
  struct kvm_segment seg = {0};
  seg.base = 0;
  seg.limit = 0xfffff;
  seg.selector = selector;
  seg.type = type;
  seg.present = 1;
  seg.s = s;
  seg.l = l;
  seg.db = db;
  seg.g = 1;
  return seg;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: exit-floor CODE_FILE\n");
    return 2;
  }
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("open /dev/kvm");
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) die("KVM_CREATE_VM");
  if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0) die("KVM_SET_TSS_ADDR");
  if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) die("KVM_CREATE_IRQCHIP");

  uint8_t *mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) die("mmap guest memory");
  struct kvm_userspace_memory_region region = {
      .slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE, .userspace_addr = (uint64_t)(uintptr_t)mem};
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");

  FILE *f = fopen(argv[1], "rb");
  if (!f) die(argv[1]);
  size_t n = fread(mem + CODE_ADDR, 1, 64 * 1024, f);
  fclose(f);
  if (n == 0) die("empty code file");

  /* The boot GDT (null, 64-bit code, data, TSS) and an empty IDT, as Sparkler and Firecracker. */
  uint64_t gdt[4] = {0, 0x00af9b000000ffffull, 0x00cf93000000ffffull, 0x008f8b000000ffffull};
  memcpy(mem + GDT_ADDR, gdt, sizeof gdt);
  memset(mem + IDT_ADDR, 0, 8);
  /* Identity map of the first GiB with 2 MiB pages. */
  *(uint64_t *)(mem + PML4_ADDR) = PDPT_ADDR | 3;
  *(uint64_t *)(mem + PDPT_ADDR) = PD_ADDR | 3;
  for (uint64_t i = 0; i < 512; i++) *(uint64_t *)(mem + PD_ADDR + i * 8) = (i << 21) | 0x83;

  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) die("KVM_CREATE_VCPU");
  int mmap_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (mmap_size < 0) die("KVM_GET_VCPU_MMAP_SIZE");
  struct kvm_run *run = mmap(NULL, (size_t)mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) die("mmap kvm_run");

  /* CPUID as KVM supports it (long mode needs CPUID.80000001H:EDX.LM in the guest's CPUID). */
  int nent = 256;
  struct kvm_cpuid2 *cpuid = calloc(1, sizeof *cpuid + nent * sizeof(struct kvm_cpuid_entry2));
  cpuid->nent = (uint32_t)nent;
  if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) die("KVM_GET_SUPPORTED_CPUID");
  if (ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0) die("KVM_SET_CPUID2");

  struct kvm_sregs sregs;
  if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) die("KVM_GET_SREGS");
  sregs.gdt.base = GDT_ADDR;
  sregs.gdt.limit = sizeof gdt - 1;
  sregs.idt.base = IDT_ADDR;
  sregs.idt.limit = 7;
  sregs.cs = segment(0x08, 11, 1, 1, 0);
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = segment(0x10, 3, 1, 0, 1);
  sregs.tr = segment(0x18, 11, 0, 0, 0);
  sregs.cr0 = (sregs.cr0 | 0x1 | 0x10 | 0x80000000ul) & ~(0x20000000ul | 0x40000000ul);
  sregs.cr3 = PML4_ADDR;
  sregs.cr4 |= 0x20;
  sregs.efer |= 0x100 | 0x400;
  if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) die("KVM_SET_SREGS");
  struct kvm_regs regs = {0};
  regs.rip = CODE_ADDR;
  regs.rflags = 2;
  regs.rsp = regs.rbp = 0x8ff0;
  if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");

  uint64_t io_exits = 0, marks = 0, t0 = 0, c0 = 0, t1 = 0, c1 = 0, counted_from = 0, exits = 0;
  for (;;) {
    if (ioctl(vcpu, KVM_RUN, 0) < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      die("KVM_RUN");
    }
    switch (run->exit_reason) {
      case KVM_EXIT_IO:
        io_exits++;
        /* A real device would look at the port and the data: read them so the compiler keeps it. */
        if (run->io.direction == KVM_EXIT_IO_IN) memset((uint8_t *)run + run->io.data_offset, 0xff, run->io.size * run->io.count);
        if (run->io.port == 0x64) goto done; /* i8042 reset */
        break;
      case KVM_EXIT_MMIO:
        if (run->mmio.is_write && run->mmio.phys_addr == BOOT_TIMER && run->mmio.data[0] == 123) {
          if (marks++ == 0) {
            t0 = now_ns(CLOCK_MONOTONIC);
            c0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
            counted_from = io_exits;
          } else {
            t1 = now_ns(CLOCK_MONOTONIC);
            c1 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
            /* Exits in the timed span: the port writes, then this closing mark's own MMIO exit. */
            exits = io_exits - counted_from + 1;
          }
        }
        break;
      case KVM_EXIT_HLT:
      case KVM_EXIT_SHUTDOWN:
        goto done;
      default:
        fprintf(stderr, "exit-floor: unexpected exit reason %u\n", run->exit_reason);
        return 1;
    }
  }
done:
  if (marks < 2) {
    fprintf(stderr, "exit-floor: the guest did not mark the start and the end of its loop\n");
    return 1;
  }
  printf("{\"exits\":%llu,\"ns\":%llu,\"ns_per_exit\":%.1f,\"cpu_ns\":%llu}\n", (unsigned long long)exits,
         (unsigned long long)(t1 - t0), (double)(t1 - t0) / (double)exits, (unsigned long long)(c1 - c0));
  return 0;
}
