// The vCPU threads of Sparkler's native shim (the N-API functions are registered in
// native/sparkler.c). Like the rest of the shim: no policy, -errno on failure.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <node_api.h>

#include "shim.h"

#define KVM_RUN_IOCTL 0xAE80  // _IO(KVMIO, 0x80)

// ---------------------------------------------------------------------------------------
// vCPU threads. Each runs `ioctl(KVM_RUN)` in a loop on its own pthread. After every return the
// exit is handed to the one VMM thread (device emulation happens there, in TypeScript, reading
// and writing the shared kvm_run mapping) and the vCPU thread waits until TypeScript resumes it.
// To interrupt KVM_RUN (pause, stop), TypeScript sets kvm_run.immediate_exit and calls
// vcpuKick(), which sends KICK_SIGNAL to the thread; the handler does nothing, so KVM_RUN
// returns -EINTR and is reported like any exit.
//
// The hand-over is one atomic state word per vCPU, changed only by compare-and-swap or exchange,
// so each exit is delivered exactly once, by one of two ways:
//   RUNNING --(vCPU: exit)--> EXITED       posted to the main thread through the threadsafe
//                                          function (the main loop was not watching)
//   WATCHED --(vCPU: exit)--> EXITED_SPIN  taken by the main thread spinning in
//                                          vcpuResumeAndWait(): no threadsafe function, no wake-up
//   EXITED* --(main: resume)--> RUNNING | WATCHED | STOP
//   WATCHED --(main: spin timed out)--> RUNNING  (if that CAS fails, the exit has just arrived)
// While EXITED*, the vCPU thread spins up to spin_ns for the resume, then sets SLEEPING on the
// word and sleeps in FUTEX_WAIT on it; the main thread's resume is an exchange that returns the
// old word, so it calls FUTEX_WAKE only when the SLEEPING flag says someone sleeps.
//
// A spin pays only while the other thread runs at the same time on another CPU; sharing one CPU,
// the spinner holds up the very thread it waits for. So each side notes the CPU it last ran on
// (sched_getcpu: an rseq read) and spins only when the other one was last seen on another CPU.
// The main thread spins even when the vCPU thread sleeps and must be woken first: on a nested
// host that wake-up is paid anyway, and catching the exit that follows is what brings the two
// threads back into the fast path (measured: 5.4 s against 7.9 s for a console-on boot).
// With several vCPUs, a spin for one must not hold up the exits of the others: posted_exits
// counts exits posted but not yet delivered, and a main-thread spin ends (or does not start)
// while it is non-zero, so the event loop can deliver them.
// How long: each side spins at most its budget, which starts at the configured spin_ns (the
// most either side may spin) and follows the waits that succeeded: 4x their running average,
// never below SPIN_MIN_NS, doubled after a spin that timed out. On fast hosts a spin then lasts
// tens of microseconds, where nested ones need hundreds. A vCPU thread whose spin ended without
// a resume also sleeps at once for the next 1, 2, 4 ... 16 hand-overs (back-off, reset by a spin
// that succeeds): when the main thread answers slowly (asleep in epoll, busy elsewhere) the spin
// is wasted, and that bounds the waste. (The main thread's back-off is in vcpu-runner.ts.)
#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/syscall.h>

#define KICK_SIGNAL (SIGRTMIN + 2)

enum {
  VCPU_RUNNING = 0,      // the vCPU thread owns kvm_run (in KVM_RUN or about to enter it)
  VCPU_WATCHED = 1,      // RUNNING, and the main thread spins for this vCPU's next exit
  VCPU_EXITED = 2,       // exit posted through the threadsafe function; the main thread owns kvm_run
  VCPU_EXITED_SPIN = 3,  // exit taken by the spinning main thread; it owns kvm_run
  VCPU_STOP = 4,         // the main thread ended the vCPU: the thread returns
  VCPU_SLEEPING = 8,     // flag on EXITED / EXITED_SPIN: the vCPU thread is (about to be) in FUTEX_WAIT
};

// vcpuResumeAndWait's answers when it returns without the next exit (KVM_RUN results are 0 or
// -errno): it spun and none came in time; it did not spin at all (see below).
#define VCPU_EXIT_PENDING 1
#define VCPU_EXIT_NOT_AWAITED 2

#define VCPU_SPIN_BACKOFF_MAX 16
#define SPIN_MIN_NS 5000

// One side's spin budget (each is touched by one thread only).
typedef struct {
  int64_t budget;  // ns; 0 = not yet set (the configured maximum)
  int64_t avg;     // running average of the waits that succeeded, ns
  int skip;        // vCPU side: hand-overs left to sleep through without spinning
  int backoff;     // vCPU side: the current back-off length
} spin_policy_t;

static int64_t spin_budget(spin_policy_t* p, int64_t max) {
  if (p->budget <= 0 || p->budget > max) p->budget = max;
  return p->budget;
}

static void spin_succeeded(spin_policy_t* p, int64_t waited, int64_t max) {
  p->avg = p->avg > 0 ? p->avg + (waited - p->avg) / 8 : waited;
  int64_t b = 4 * p->avg;
  p->budget = b < SPIN_MIN_NS ? SPIN_MIN_NS : b > max ? max : b;
  p->backoff = 0;
}

static void spin_timed_out(spin_policy_t* p, int64_t max) {
  p->budget = p->budget * 2 > max ? max : p->budget * 2;
  p->backoff = p->backoff ? p->backoff * 2 : 1;
  if (p->backoff > VCPU_SPIN_BACKOFF_MAX) p->backoff = VCPU_SPIN_BACKOFF_MAX;
  p->skip = p->backoff;
}

typedef struct {
  _Atomic int state;        // VCPU_*; the futex word
  int fd;
  int index;
  pthread_t thread;
  int64_t spin_ns;          // how long the vCPU thread spins for a resume before FUTEX_WAIT
  spin_policy_t vcpu_spin;  // the vCPU thread's spin for a resume (vCPU thread only)
  spin_policy_t main_spin;  // the main thread's spin for an exit (main thread only)
  _Atomic int vcpu_cpu;     // the CPU the vCPU thread last ran on (a hint: relaxed)
  _Atomic int main_cpu;     // the CPU the main thread last handled this vCPU on (a hint)
  int64_t last_result;      // KVM_RUN's result (0 or -errno) for the pending exit
  uint64_t first_run_ns;    // CLOCK_MONOTONIC at the first KVM_RUN
  napi_threadsafe_function tsfn;
  // Owners of this struct: the JS handle and the running thread. The last to let go frees it,
  // so a handle collected while its thread still runs cannot leave the thread on freed memory.
  _Atomic int refs;
  int joined;               // pthread_join returned (main thread only)
  // The port-I/O fast path (native/fast-pio.c), once attached: run and run_len are set before
  // `fast` is published, and never change after.
  _Atomic(fast_pio_t*) fast;
  uint8_t* run;
  size_t run_len;
} vcpu_t;

static void vcpu_unref(vcpu_t* v) {
  if (atomic_fetch_sub(&v->refs, 1) == 1) {
    fast_pio_unref(atomic_load(&v->fast));
    free(v);
  }
}

static void kick_handler(int sig) { (void)sig; }

// Exits posted through a threadsafe function whose callback has not run yet (all vCPUs).
static _Atomic int posted_exits;

static inline uint64_t vcpu_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Hands the word to its next owner; wakes the vCPU thread only if it sleeps on it.
static void vcpu_release(vcpu_t* v, int next) {
  int old = atomic_exchange(&v->state, next);
  if (old & VCPU_SLEEPING) syscall(SYS_futex, (int*)&v->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

// The CPU the calling thread runs on, or -1.
static inline int vcpu_current_cpu(void) { return sched_getcpu(); }

// Whether a thread on CPU `me` should spin for one last seen on CPU `other`.
static inline bool vcpu_spin_useful(int me, int other) { return me < 0 || other < 0 || me != other; }

// On the vCPU thread, with the exit handed over: waits for RUNNING/WATCHED (true) or STOP (false).
static bool vcpu_wait_resume(vcpu_t* v) {
  int me = vcpu_current_cpu();
  atomic_store_explicit(&v->vcpu_cpu, me, memory_order_relaxed);
  bool spin = v->spin_ns > 0 && vcpu_spin_useful(me, atomic_load_explicit(&v->main_cpu, memory_order_relaxed));
  if (spin && v->vcpu_spin.skip > 0) {
    v->vcpu_spin.skip--;
    spin = false;
  }
  uint64_t start = spin ? vcpu_now_ns() : 0;
  uint64_t deadline = spin ? start + (uint64_t)spin_budget(&v->vcpu_spin, v->spin_ns) : 0;
  unsigned spins = 0;
  for (;;) {
    int s = atomic_load_explicit(&v->state, memory_order_acquire);
    if (s == VCPU_RUNNING || s == VCPU_WATCHED || s == VCPU_STOP) {
      if (deadline != 0) spin_succeeded(&v->vcpu_spin, (int64_t)(vcpu_now_ns() - start), v->spin_ns);
      return s != VCPU_STOP;
    }
    if (deadline != 0) {
      if ((++spins & 31) != 0 || vcpu_now_ns() < deadline) {
        cpu_relax();
        continue;
      }
      deadline = 0;  // spun long enough: sleep from now on, and back off
      spin_timed_out(&v->vcpu_spin, v->spin_ns);
    }
    if (!(s & VCPU_SLEEPING)) {
      if (!atomic_compare_exchange_strong(&v->state, &s, s | VCPU_SLEEPING)) continue;
      s |= VCPU_SLEEPING;
    }
    // Returns on FUTEX_WAKE, at once if the word is no longer s (EAGAIN), on the kick (EINTR)
    // or spuriously: every case re-reads the word.
    syscall(SYS_futex, (int*)&v->state, FUTEX_WAIT_PRIVATE, s, NULL, NULL, 0);
  }
}

static void* vcpu_thread(void* arg) {
  vcpu_t* v = (vcpu_t*)arg;
  // Firecracker's thread name (at most 15 bytes): tools such as Kata find vCPU threads by it.
  char name[16];
  snprintf(name, sizeof name, "fc_vcpu %d", v->index);
  pthread_setname_np(pthread_self(), name);
  // Only this thread takes the kick signal: it is unblocked here and blocked elsewhere.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, KICK_SIGNAL);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  v->first_run_ns = vcpu_now_ns();
  for (;;) {
    long r = ioctl(v->fd, KVM_RUN_IOCTL, 0);
    if (r == 0) {
      fast_pio_t* fast = atomic_load_explicit(&v->fast, memory_order_acquire);
      if (fast && fast_pio_handle(fast, v->run, v->run_len)) continue;  // answered: no hand-over
    }
    v->last_result = r < 0 ? -errno : 0;
    // Publish the exit (the CAS orders last_result and kvm_run before it): to the watching
    // main thread if it spins for us, else through the threadsafe function.
    int s = atomic_load_explicit(&v->state, memory_order_relaxed);
    int next;
    do {
      if (s == VCPU_STOP) goto out;  // not reached: the main thread stops only an exited vCPU
      next = s == VCPU_WATCHED ? VCPU_EXITED_SPIN : VCPU_EXITED;
    } while (!atomic_compare_exchange_weak(&v->state, &s, next));
    if (next == VCPU_EXITED) {
      atomic_fetch_add(&posted_exits, 1);
      if (napi_call_threadsafe_function(v->tsfn, v, napi_tsfn_blocking) != napi_ok) {
        atomic_fetch_sub(&posted_exits, 1);
        break;
      }
    }
    if (!vcpu_wait_resume(v)) break;
  }
out:
  napi_release_threadsafe_function(v->tsfn, napi_tsfn_release);
  vcpu_unref(v);
  return NULL;
}

// Runs on the main thread: callback(index, result, firstRunNs).
static void vcpu_call_js(napi_env env, napi_value callback, void* context, void* data) {
  (void)context;
  vcpu_t* v = (vcpu_t*)data;
  if (env == NULL) {  // the environment is shutting down
    atomic_fetch_sub(&posted_exits, 1);
    return;
  }
  atomic_fetch_sub(&posted_exits, 1);
  atomic_store_explicit(&v->main_cpu, vcpu_current_cpu(), memory_order_relaxed);
  napi_value argv[3], undefined;
  if (napi_create_int32(env, v->index, &argv[0]) != napi_ok) return;
  if (napi_create_int64(env, v->last_result, &argv[1]) != napi_ok) return;
  if (napi_create_bigint_uint64(env, v->first_run_ns, &argv[2]) != napi_ok) return;
  if (napi_get_undefined(env, &undefined) != napi_ok) return;
  napi_call_function(env, undefined, callback, 3, argv, NULL);
}

static void vcpu_finalize(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  vcpu_t* v = (vcpu_t*)data;
  // TypeScript joins a thread before dropping its handle; one never joined (a VM dropped without
  // close()) is detached so that its end reclaims it, and it frees the struct when it ends.
  if (!v->joined) pthread_detach(v->thread);
  vcpu_unref(v);
}

// vcpuStart(fd, index, onExit(index, result, firstRunNs), spinNs) -> handle. spinNs: how long
// the vCPU thread spins for each resume before it sleeps (0: sleep at once).
napi_value js_vcpu_start(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  INT_ARG(env, argv[0], fd);
  INT_ARG(env, argv[1], index);
  INT_ARG(env, argv[3], spin_ns);
  vcpu_t* v = calloc(1, sizeof *v);
  if (!v) {
    napi_throw_error(env, NULL, "Out of memory creating a vCPU thread.");
    return NULL;
  }
  atomic_init(&v->state, VCPU_RUNNING);
  atomic_init(&v->refs, 2);
  atomic_init(&v->vcpu_cpu, -1);
  atomic_init(&v->main_cpu, -1);
  v->fd = (int)fd;
  v->index = (int)index;
  v->spin_ns = spin_ns > 0 ? spin_ns : 0;
  napi_value name, handle;
  NAPI_CALL(env, napi_create_string_utf8(env, "sparkler-vcpu", NAPI_AUTO_LENGTH, &name));
  NAPI_CALL(env, napi_create_threadsafe_function(env, argv[2], NULL, name, 0, 1, NULL, NULL, NULL,
                                                 vcpu_call_js, &v->tsfn));
  NAPI_CALL(env, napi_create_external(env, v, vcpu_finalize, NULL, &handle));
  int err = pthread_create(&v->thread, NULL, vcpu_thread, v);
  if (err != 0) {
    atomic_store(&v->refs, 1);  // no thread: only the handle owns it
    v->joined = 1;
    napi_release_threadsafe_function(v->tsfn, napi_tsfn_abort);
    napi_throw_error(env, NULL, "pthread_create failed for a vCPU thread.");
    return NULL;
  }
  return handle;
}

static vcpu_t* get_vcpu(napi_env env, napi_value handle) {
  void* data = NULL;
  if (napi_get_value_external(env, handle, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "Expected a vCPU handle.");
    return NULL;
  }
  return (vcpu_t*)data;
}

// vcpuResume(handle, stop: boolean): let the vCPU thread, whose exit the caller holds, run
// again (or end).
napi_value js_vcpu_resume(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  vcpu_t* v = get_vcpu(env, argv[0]);
  if (!v) return NULL;
  bool stop;
  NAPI_CALL(env, napi_get_value_bool(env, argv[1], &stop));
  atomic_store_explicit(&v->main_cpu, vcpu_current_cpu(), memory_order_relaxed);
  vcpu_release(v, stop ? VCPU_STOP : VCPU_RUNNING);
  return NULL;
}

// On the main thread, having released the vCPU as WATCHED: spins up to spin_ns for its next
// exit. Returns KVM_RUN's result if it arrived (the caller owns the exit), else
// VCPU_EXIT_PENDING after setting the word back to RUNNING (the exit will be posted), or
// VCPU_EXIT_NOT_AWAITED at once when the vCPU thread was last seen on this CPU or another
// vCPU's exit waits to be delivered. The spin also ends early when one is posted meanwhile.
static int64_t vcpu_await_exit(vcpu_t* v, int me, int64_t max_ns) {
  bool spin = max_ns > 0 && vcpu_spin_useful(me, atomic_load_explicit(&v->vcpu_cpu, memory_order_relaxed)) &&
              atomic_load_explicit(&posted_exits, memory_order_relaxed) == 0;
  uint64_t start = vcpu_now_ns();
  uint64_t deadline = spin ? start + (uint64_t)spin_budget(&v->main_spin, max_ns) : start;
  for (unsigned spins = 0;; spins++) {
    int s = atomic_load_explicit(&v->state, memory_order_acquire);
    if ((s & ~VCPU_SLEEPING) == VCPU_EXITED_SPIN) {
      if (spin) spin_succeeded(&v->main_spin, (int64_t)(vcpu_now_ns() - start), max_ns);
      return v->last_result;
    }
    if ((spins & 31) != 0) {
      cpu_relax();
      continue;
    }
    bool others = atomic_load_explicit(&posted_exits, memory_order_relaxed) != 0;
    if (others || vcpu_now_ns() >= deadline) {
      int expected = VCPU_WATCHED;
      // Stop watching; if the CAS fails the exit arrived (EXITED_SPIN) in the meantime: take it.
      if (!atomic_compare_exchange_strong(&v->state, &expected, VCPU_RUNNING)) return v->last_result;
      if (!spin || others) return VCPU_EXIT_NOT_AWAITED;  // not a spin that failed
      spin_timed_out(&v->main_spin, max_ns);
      return VCPU_EXIT_PENDING;
    }
    cpu_relax();
  }
}

// vcpuResumeAndWait(handle, spinNs) -> result | VCPU_EXIT_PENDING (1) | VCPU_EXIT_NOT_AWAITED (2).
// Resumes the vCPU whose exit the caller holds and spins up to spinNs for its next exit: if it
// arrives, returns KVM_RUN's result (0 or -errno; kvm_run holds the exit and the caller owns it
// again); otherwise 1, and the exit will come through onExit as usual. A plain resume and 2 at
// once when spinNs <= 0, when the vCPU thread was last seen on this CPU (it would wait for this
// spin to end) or when another vCPU's exit waits to be delivered.
napi_value js_vcpu_resume_and_wait(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  vcpu_t* v = get_vcpu(env, argv[0]);
  if (!v) return NULL;
  INT_ARG(env, argv[1], spin_ns);
  int64_t out = VCPU_EXIT_NOT_AWAITED;
  int me = vcpu_current_cpu();
  atomic_store_explicit(&v->main_cpu, me, memory_order_relaxed);
  if (spin_ns <= 0 || !vcpu_spin_useful(me, atomic_load_explicit(&v->vcpu_cpu, memory_order_relaxed)) ||
      atomic_load_explicit(&posted_exits, memory_order_relaxed) != 0) {
    vcpu_release(v, VCPU_RUNNING);
  } else {
    vcpu_release(v, VCPU_WATCHED);
    out = vcpu_await_exit(v, me, spin_ns);
  }
  napi_value result;
  NAPI_CALL(env, napi_create_int32(env, (int32_t)out, &result));
  return result;
}

// vcpuResumeWatched(handle): resumes the vCPU whose exit the caller holds, and keeps its next
// exit for vcpuAwaitExit() instead of posting it: the caller must call vcpuAwaitExit() soon
// (in the same event-loop turn, say from setImmediate), or the vCPU waits.
napi_value js_vcpu_resume_watched(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  vcpu_t* v = get_vcpu(env, argv[0]);
  if (!v) return NULL;
  atomic_store_explicit(&v->main_cpu, vcpu_current_cpu(), memory_order_relaxed);
  vcpu_release(v, VCPU_WATCHED);
  return NULL;
}

// vcpuAwaitExit(handle, spinNs) -> result | VCPU_EXIT_PENDING | VCPU_EXIT_NOT_AWAITED: after
// vcpuResumeWatched(), takes the vCPU's next exit if it has arrived or arrives within spinNs
// (as vcpuResumeAndWait does); otherwise stops watching, and the exit will be posted.
napi_value js_vcpu_await_exit(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  vcpu_t* v = get_vcpu(env, argv[0]);
  if (!v) return NULL;
  INT_ARG(env, argv[1], spin_ns);
  int me = vcpu_current_cpu();
  atomic_store_explicit(&v->main_cpu, me, memory_order_relaxed);
  napi_value result;
  NAPI_CALL(env, napi_create_int32(env, (int32_t)vcpu_await_exit(v, me, spin_ns), &result));
  return result;
}

// vcpuKick(handle) -> 0 | -errno: interrupt a running KVM_RUN (immediate_exit set by caller).
napi_value js_vcpu_kick(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  vcpu_t* v = get_vcpu(env, argv[0]);
  if (!v) return NULL;
  return make_int64(env, -pthread_kill(v->thread, KICK_SIGNAL));
}

// vcpuJoin(handle): wait for a stopped vCPU thread to end (call after vcpuResume(h, true)).
napi_value js_vcpu_join(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  vcpu_t* v = get_vcpu(env, argv[0]);
  if (!v) return NULL;
  if (v->joined) return make_int64(env, -EINVAL);
  int err = pthread_join(v->thread, NULL);
  if (err == 0) v->joined = 1;
  return make_int64(env, -err);
}

// vcpuSetFastPio(handle, table, runBytes) -> 0 | -EBUSY: from now on this vCPU's thread answers
// the port accesses `table` (fastPioCreate) matches itself, in its kvm_run mapping `runBytes`.
// Once per vCPU; the table lives as long as any vCPU uses it.
napi_value js_vcpu_set_fast_pio(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  vcpu_t* v = get_vcpu(env, argv[0]);
  if (!v) return NULL;
  fast_pio_t* t = fast_pio_from(env, argv[1]);
  if (!t) return NULL;
  void* data = NULL;
  size_t length = 0;
  NAPI_CALL(env, napi_get_buffer_info(env, argv[2], &data, &length));
  if (atomic_load(&v->fast) != NULL) return make_int64(env, -EBUSY);
  v->run = (uint8_t*)data;
  v->run_len = length;
  fast_pio_ref(t);
  atomic_store_explicit(&v->fast, t, memory_order_release);
  return make_int64(env, 0);
}

// Called once when the addon loads. The kick signal interrupts syscalls (no SA_RESTART) and is
// blocked on every thread but the vCPU threads, so a stray delivery cannot disturb Node's own.
void vcpu_install_kick_signal(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = kick_handler;
  sigemptyset(&sa.sa_mask);
  sigaction(KICK_SIGNAL, &sa, NULL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, KICK_SIGNAL);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
}
