// The one piece of the shim written against V8's own API (C++), because N-API cannot say it:
// an ArrayBuffer over memory the shim manages itself (an mmap), which V8 does not count as
// external memory. N-API's external ArrayBuffer is counted, and guest RAM (128 MiB and more)
// is past V8's external-memory limit the moment it is created, so V8 answered with a full
// garbage collection in the middle of VM set-up (~35 ms in the emulated host). V8 leaves a
// backing store out of that count when its deleter is BackingStore::EmptyDeleter (it cannot
// free the memory, so collecting sooner would not help); the mapping is unmapped instead by an
// N-API finalizer on the ArrayBuffer (native/sparkler.c), after V8 is done with it.
#include <node_api.h>
#include <v8.h>

#include <cstring>
#include <memory>

extern "C" napi_status create_uncounted_arraybuffer(napi_env env, void* data, size_t length,
                                                    napi_value* result) {
  (void)env;
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate == nullptr) return napi_generic_failure;
  std::unique_ptr<v8::BackingStore> store =
      v8::ArrayBuffer::NewBackingStore(data, length, v8::BackingStore::EmptyDeleter, nullptr);
  v8::Local<v8::ArrayBuffer> buffer = v8::ArrayBuffer::New(isolate, std::move(store));
  // Node's N-API represents a napi_value as the address a v8::Local<v8::Value> holds (its
  // v8impl::JsValueFromV8LocalValue); the handle lives in the caller's handle scope.
  v8::Local<v8::Value> value = buffer;
  static_assert(sizeof(value) == sizeof(*result), "a v8::Local is one pointer");
  std::memcpy(result, &value, sizeof value);
  return napi_ok;
}
