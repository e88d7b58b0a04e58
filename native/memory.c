// The VMM's own memory: calls that give memory back once the VM runs (malloc_trim, and two
// entry points of the running node found with dlsym), and the bundle's source mapped from its
// file instead of copied into the V8 heap. Thin shims like the rest: TypeScript decides when.
#define _GNU_SOURCE
// Only for the declaration of node_api_create_external_string_latin1 (its type is checked below);
// the addon itself still registers as an N-API 8 module (native/sparkler.c).
#define NAPI_EXPERIMENTAL
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <node_api.h>

#include "shim.h"

// mallocTrim(pad) -> 1 if glibc returned memory to the system, else 0. Gives back the free pages
// of every malloc arena (not just the top of the main heap): after the VM is built, the
// set-up's transient allocations are free but still resident.
napi_value js_malloc_trim(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  INT_ARG(env, argv[0], pad);
  if (pad < 0) pad = 0;
  return make_int64(env, malloc_trim((size_t)pad));
}

// lowMemoryNotification() -> 0, or -ENOSYS when this Node does not export it. Calls Node's
// embedder API node::LowMemoryNotification() (node.h), found in the running executable: V8
// then collects all garbage in memory-reducing mode (shrinks the young generation, compacts,
// frees pooled pages), which a plain full GC does not do.
napi_value js_low_memory_notification(napi_env env, napi_callback_info info) {
  (void)info;
  void (*notify)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "_ZN4node21LowMemoryNotificationEv");
  if (notify == NULL) return make_int64(env, -ENOSYS);
  notify();
  return make_int64(env, 0);
}

// setV8Flags(flags: string) -> 0, or -ENOSYS when this node does not export it. V8's public
// v8::V8::SetFlagsFromString(const char*) (what node:v8's setFlagsFromString calls; loading
// node:v8 would load Node's stream modules, about 0.2 MiB of heap), found in the running node.
napi_value js_set_v8_flags(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  char flags[256];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[0], flags, sizeof flags, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "Expected a string argument: flags");
    return NULL;
  }
  if (len >= sizeof flags - 1) {
    napi_throw_range_error(env, NULL, "V8 flags longer than 254 bytes");
    return NULL;
  }
  void (*set_flags)(const char*) = (void (*)(const char*))dlsym(RTLD_DEFAULT, "_ZN2v82V818SetFlagsFromStringEPKc");
  if (set_flags == NULL) return make_int64(env, -ENOSYS);
  set_flags(flags);
  return make_int64(env, 0);
}

typedef __typeof__(node_api_create_external_string_latin1) create_external_latin1_fn;

// mapFileLatin1(path) -> { text: string, copied: boolean } | -errno. Maps the file read-only
// (MAP_PRIVATE) and hands the mapping to V8 as an external Latin-1 string, so that the VMM
// bundle's source (kept alive for lazy compilation) is clean page-cache memory shared by every
// VMM process rather than ~0.5 MiB of private V8 heap each. The mapping stays for the life of
// the process (V8 keeps the script's source), the fd is closed at once. The file must not be
// rewritten in place while mapped (the bundler renames a new file over it). When V8 copied the
// bytes (copied: true; a V8 sandbox build does) the mapping is unmapped again. -ENOSYS when the
// running node lacks the call (found with dlsym: a missing symbol would otherwise end the
// process at the first call); -EINVAL for an empty file.
napi_value js_map_file_latin1(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  char path[4096];
  size_t len;
  NAPI_CALL(env, napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len));
  if (len >= sizeof path - 1) return make_int64(env, -ENAMETOOLONG);
  create_external_latin1_fn* create_external =
      (create_external_latin1_fn*)dlsym(RTLD_DEFAULT, "node_api_create_external_string_latin1");
  if (create_external == NULL) return make_int64(env, -ENOSYS);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_int64(env, -errno);
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int err = errno;
    close(fd);
    return make_int64(env, -err);
  }
  if (st.st_size <= 0 || st.st_size > INT_MAX) {
    close(fd);
    return make_int64(env, st.st_size <= 0 ? -EINVAL : -EFBIG);
  }
  size_t size = (size_t)st.st_size;
  // Safety: a fresh read-only mapping chosen by the kernel, never MAP_FIXED.
  void* p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  close(fd);
  if (p == MAP_FAILED) return make_int64(env, -err);
  napi_value text, copied_value, out;
  bool copied = true;
  // No finalizer: the string lives as long as the compiled script, i.e. the process.
  napi_status status = create_external(env, (char*)p, size, NULL, NULL, &text, &copied);
  if (status != napi_ok || copied) munmap(p, size);
  NAPI_CALL(env, status);
  NAPI_CALL(env, napi_get_boolean(env, copied, &copied_value));
  NAPI_CALL(env, napi_create_object(env, &out));
  NAPI_CALL(env, napi_set_named_property(env, out, "text", text));
  NAPI_CALL(env, napi_set_named_property(env, out, "copied", copied_value));
  return out;
}
