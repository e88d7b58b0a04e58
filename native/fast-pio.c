// The vCPU loop's port-I/O fast path: a small table TypeScript fills (which port, which
// direction, what to do) and a byte ring it drains. Device logic stays in TypeScript: it decides
// when an access may skip the hand-over to the VMM thread and re-writes the table whenever the
// device's registers change; C only matches an exit against the table and either answers a read
// with the given constant or appends a written byte to the ring. Everything else (and a full
// ring) takes the usual path. The layout TypeScript sees (src/vmm/fast-pio.ts):
//   u32 rules[8]   0 = empty; else port | out << 16 | action << 17 | value << 24
//   u32 tail       bytes appended (C; wraps)       u32 head   bytes drained (TypeScript)
//   u32 lock       producers' spinlock (C only)    u32 notify set by C when it signals the
//                                                  eventfd, cleared by TypeScript as it drains
//   u32 hits       exits answered here             u32 full   writes refused for a full ring
//   u32 coalesced  where KVM's coalesced ring is in the kvm_run mapping (0: not used); when set,
//                  a constant read that finds writes queued there signals the eventfd too
//   u8  ring[FAST_PIO_RING] at offset 64
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <node_api.h>

#include "shim.h"

#define FAST_PIO_RULES 8
#define FAST_PIO_RING 16384  // a power of two
#define FAST_PIO_READ_CONST 1
#define FAST_PIO_WRITE_RING 2
#define KVM_EXIT_IO_REASON 2

typedef struct {
  _Atomic uint32_t rules[FAST_PIO_RULES];
  _Atomic uint32_t tail;
  _Atomic uint32_t head;
  _Atomic uint32_t lock;
  _Atomic uint32_t notify;
  _Atomic uint32_t hits;
  _Atomic uint32_t full;
  _Atomic uint32_t coalesced;  // byte offset of KVM's coalesced ring in kvm_run's mapping; 0: none
  uint32_t reserved;
  uint8_t ring[FAST_PIO_RING];
} fast_pio_shared_t;

#define FAST_PIO_MAGIC 0x70696f66u

struct fast_pio {
  fast_pio_shared_t shared;  // first: the ArrayBuffer TypeScript sees starts here
  uint32_t magic;            // FAST_PIO_MAGIC: tells our buffers from others
  _Atomic int refs;          // the ArrayBuffer and every vCPU it is attached to
  int eventfd;               // signalled when the ring turns non-empty for the drain; -1: none
};

_Static_assert(sizeof(fast_pio_shared_t) == 64 + FAST_PIO_RING, "fast-pio layout");

void fast_pio_ref(fast_pio_t* t) { atomic_fetch_add(&t->refs, 1); }

void fast_pio_unref(fast_pio_t* t) {
  if (t && atomic_fetch_sub(&t->refs, 1) == 1) free(t);
}

static void fast_pio_finalize(napi_env env, void* data, void* hint) {
  (void)env;
  (void)data;
  fast_pio_unref((fast_pio_t*)hint);
}

// fastPioCreate(eventfd) -> ArrayBuffer: a table and ring, empty (every exit takes the usual path).
napi_value js_fast_pio_create(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  INT_ARG(env, argv[0], efd);
  fast_pio_t* t = calloc(1, sizeof *t);
  if (!t) {
    napi_throw_error(env, NULL, "Out of memory creating the port-I/O fast path.");
    return NULL;
  }
  atomic_init(&t->refs, 1);
  t->magic = FAST_PIO_MAGIC;
  t->eventfd = (int)efd;
  napi_value buffer;
  napi_status st = napi_create_external_arraybuffer(env, &t->shared, sizeof t->shared, fast_pio_finalize, t, &buffer);
  if (st != napi_ok) {
    free(t);
    NAPI_CALL(env, st);
  }
  return buffer;
}

// The table behind an ArrayBuffer from fastPioCreate, or NULL (with a TypeError thrown).
fast_pio_t* fast_pio_from(napi_env env, napi_value buffer) {
  void* data = NULL;
  size_t length = 0;
  bool is_ab = false;
  if (napi_is_arraybuffer(env, buffer, &is_ab) != napi_ok || !is_ab ||
      napi_get_arraybuffer_info(env, buffer, &data, &length) != napi_ok || data == NULL ||
      length != sizeof(fast_pio_shared_t) || ((fast_pio_t*)data)->magic != FAST_PIO_MAGIC) {
    napi_throw_type_error(env, NULL, "Expected an ArrayBuffer from fastPioCreate.");
    return NULL;
  }
  return (fast_pio_t*)data;
}

// Signals the eventfd once per drain (TypeScript clears notify as it drains).
static void fast_pio_notify(fast_pio_t* t) {
  if (t->eventfd >= 0 && atomic_exchange_explicit(&t->shared.notify, 1, memory_order_acq_rel) == 0) {
    uint64_t one = 1;
    ssize_t w = write(t->eventfd, &one, sizeof one);
    (void)w;  // EAGAIN: the counter is already non-zero, the drain is signalled
  }
}

// Called on a vCPU thread after KVM_RUN returned 0: true when the exit was answered here (the
// caller re-enters KVM_RUN at once), false when it goes to TypeScript as usual.
bool fast_pio_handle(fast_pio_t* t, uint8_t* run, size_t run_len) {
  fast_pio_shared_t* s = &t->shared;
  uint32_t reason;
  memcpy(&reason, run + 8, sizeof reason);
  if (reason != KVM_EXIT_IO_REASON) return false;
  // struct kvm_run's io: u8 direction, u8 size, u16 port, u32 count, u64 data_offset (at 32).
  uint8_t out = run[32], size = run[33];
  uint16_t port;
  uint32_t count;
  uint64_t offset;
  memcpy(&port, run + 34, sizeof port);
  memcpy(&count, run + 36, sizeof count);
  memcpy(&offset, run + 40, sizeof offset);
  // With immediate_exit set (a pause is on its way) the access goes the usual way, so that the
  // runner sees it and completes it before parking (vcpu-runner.ts, accessPending).
  if (size != 1 || count != 1 || offset >= run_len || run[1] != 0) return false;
  for (int i = 0; i < FAST_PIO_RULES; i++) {
    uint32_t rule = atomic_load_explicit(&s->rules[i], memory_order_acquire);
    if (rule == 0 || (rule & 0xffff) != port || ((rule >> 16) & 1) != out) continue;
    uint32_t action = (rule >> 17) & 7;
    if (action == FAST_PIO_READ_CONST && !out) {
      run[offset] = (uint8_t)(rule >> 24);
      atomic_fetch_add_explicit(&s->hits, 1, memory_order_relaxed);
      // Writes KVM queued (coalesced PIO) with no exit after them: have TypeScript drain them,
      // as for bytes in our own ring. The ring starts with u32 first, last.
      uint32_t at = atomic_load_explicit(&s->coalesced, memory_order_relaxed);
      if (at != 0 && (size_t)at + 8 <= run_len) {
        uint32_t first = __atomic_load_n((uint32_t*)(run + at), __ATOMIC_ACQUIRE);
        uint32_t last = __atomic_load_n((uint32_t*)(run + at + 4), __ATOMIC_ACQUIRE);
        if (first != last) fast_pio_notify(t);
      }
      return true;
    }
    if (action != FAST_PIO_WRITE_RING || !out) return false;
    while (atomic_exchange_explicit(&s->lock, 1, memory_order_acquire)) {
      while (atomic_load_explicit(&s->lock, memory_order_relaxed)) __builtin_ia32_pause();
    }
    uint32_t tail = atomic_load_explicit(&s->tail, memory_order_relaxed);
    bool room = tail - atomic_load_explicit(&s->head, memory_order_acquire) < FAST_PIO_RING;
    if (room) {
      s->ring[tail & (FAST_PIO_RING - 1)] = run[offset];
      atomic_store_explicit(&s->tail, tail + 1, memory_order_release);
    }
    atomic_store_explicit(&s->lock, 0, memory_order_release);
    if (!room) {
      atomic_fetch_add_explicit(&s->full, 1, memory_order_relaxed);
      return false;  // TypeScript drains the ring before it handles this write
    }
    atomic_fetch_add_explicit(&s->hits, 1, memory_order_relaxed);
    fast_pio_notify(t);
    return true;
  }
  return false;
}
