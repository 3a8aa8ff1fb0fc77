// N-API wrappers of the load-time heap reservation (heap.h). Synchronous and cheap: the faulting
// runs on heap.cc's own helper thread.
#include "heap.h"
#include "napi_util.h"

namespace rome {

// heapReserveBegin(bytes: integer >= 0) -> boolean (false: nothing reserved, see heap.h)
static Napi::Value HeapReserveBegin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double bytes;
  if (!GetNumber(env, info[0], "bytes", bytes) ||
      !Require(env, bytes >= 0 && bytes <= 9007199254740991.0 && bytes == double(int64_t(bytes)), "Expected an integer bytes >= 0"))
    return env.Undefined();
  return Napi::Boolean::New(env, heap_reserve_begin(std::size_t(bytes)));
}

static Napi::Value HeapReserveEnd(const Napi::CallbackInfo& info) {
  heap_reserve_end();
  return info.Env().Undefined();
}

static Napi::Value HeapTrim(const Napi::CallbackInfo& info) {
  heap_trim();
  return info.Env().Undefined();
}

void InitHeap(Napi::Env env, Napi::Object exports) {
  exports.Set("heapReserveBegin", Napi::Function::New(env, HeapReserveBegin, "heapReserveBegin"));
  exports.Set("heapReserveEnd", Napi::Function::New(env, HeapReserveEnd, "heapReserveEnd"));
  exports.Set("heapTrim", Napi::Function::New(env, HeapTrim, "heapTrim"));
}

}  // namespace rome
