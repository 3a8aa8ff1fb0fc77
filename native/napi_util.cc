// N-API plumbing (see napi_util.h).
#include "napi_util.h"

#include <algorithm>
#include <cstring>
#include <cstdlib>
#ifdef __linux__
#include <sys/mman.h>
#endif

namespace rome {

Napi::Object MakeError(Napi::Env env, const std::string& code, const std::string& message) {
  AddonData* data = env.GetInstanceData<AddonData>();
  if (data && !data->rome_error.IsEmpty()) {
    Napi::Value e = data->rome_error.New({Napi::String::New(env, code), Napi::String::New(env, message)});
    if (!env.IsExceptionPending() && e.IsObject()) return e.As<Napi::Object>();
    if (env.IsExceptionPending()) env.GetAndClearPendingException();
  }
  Napi::Object e = Napi::Error::New(env, message).Value();
  e.Set("code", Napi::String::New(env, code));
  return e;
}

Napi::Value Throw(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error(env, MakeError(env, code, message)).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Object MakeError(Napi::Env env, const Status& s) {
  Napi::Object e = MakeError(env, s.code, s.message);
  for (const auto& [key, value] : s.details) e.Set(key, Napi::Number::New(env, value));
  return e;
}

Napi::Value ThrowStatus(Napi::Env env, const Status& s) {
  Napi::Error(env, MakeError(env, s)).ThrowAsJavaScriptException();
  return env.Undefined();
}

bool Require(Napi::Env env, bool ok, const std::string& what) {
  if (!ok) Throw(env, "ERR_NATIVE_ARGUMENT", what);
  return ok;
}

static const char* KindName(napi_typedarray_type kind) {
  switch (kind) {
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint8_array: return "Uint8Array";
    default: return "typed array";
  }
}

static const char* TypeName(napi_typedarray_type kind) {
  switch (kind) {
    case napi_float32_array: return "float32";
    case napi_float64_array: return "float64";
    case napi_int32_array: return "int32";
    case napi_uint8_array: return "uint8";
    default: return "?";
  }
}

static size_t ElementSize(napi_typedarray_type kind) {
  switch (kind) {
    case napi_float64_array: return 8;
    case napi_float32_array: case napi_int32_array: return 4;
    default: return 1;
  }
}

size_t Tensor::bytes() const { return size_t(length) * ElementSize(kind); }

static bool GetTyped(Napi::Env env, Napi::Value v, const std::string& name, napi_typedarray_type kind, Tensor& out) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != kind)
    return Require(env, false, std::string("Expected ") + KindName(kind) + " for " + name);
  out.kind = kind;
  out.holder = v.As<Napi::TypedArray>();
  return true;
}

bool GetArray(Napi::Env env, Napi::Value v, const char* name, napi_typedarray_type kind, Tensor& out) {
  out.name = name;
  out.bare = true;
  return GetTyped(env, v, name, kind, out);
}

bool GetTensor(Napi::Env env, Napi::Value v, const char* name, napi_typedarray_type kind, size_t min_rank,
               size_t max_rank, Tensor& out) {
  const std::string n(name);
  out.name = n;
  out.bare = false;
  if (!Require(env, v.IsObject() && !v.IsTypedArray(), "Expected a { dims, type, data } tensor for " + n)) return false;
  Napi::Object o = v.As<Napi::Object>();
  Napi::Value type = o.Get("type");
  if (env.IsExceptionPending()) return false;
  if (!Require(env, type.IsString() && type.As<Napi::String>().Utf8Value() == TypeName(kind),
               "Expected type '" + std::string(TypeName(kind)) + "' for " + n))
    return false;
  Napi::Value data = o.Get("data");
  if (env.IsExceptionPending() || !GetTyped(env, data, n + ".data", kind, out)) return false;
  Napi::Value dv = o.Get("dims");
  if (env.IsExceptionPending()) return false;
  if (!Require(env, dv.IsArray(), "Expected an array of dims for " + n)) return false;
  Napi::Array dims = dv.As<Napi::Array>();
  const size_t rank = dims.Length();
  max_rank = std::min(max_rank, kMaxRank);
  if (!Require(env, rank >= min_rank && rank <= max_rank,
               "Expected rank between " + std::to_string(min_rank) + " and " + std::to_string(max_rank) + " for " + n +
                   " but received " + std::to_string(rank)))
    return false;
  out.dims.clear();
  int64_t product = 1, extent = 1;  // extent: zeros counted as 1, bounds every index computed from dims
  for (uint32_t i = 0; i < rank; i++) {
    Napi::Value d = dims.Get(i);
    if (env.IsExceptionPending()) return false;
    const double x = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
    if (!Require(env, x >= 0 && x <= double(kMaxDim) && x == double(int64_t(x)),
                 "Expected integer dims in [0, " + std::to_string(kMaxDim) + "] for " + n))
      return false;
    const int64_t k = int64_t(x);
    out.dims.push_back(k);
    if (!Require(env, CheckedMul(extent, k ? k : 1, extent) && extent <= kMaxElements,
                 "Dims of " + n + " multiply to more than " + std::to_string(kMaxElements) + " elements"))
      return false;
    product *= k;  // <= extent, no overflow
  }
  out.count = product;
  return true;
}

bool Bind(Napi::Env env, std::initializer_list<Tensor*> tensors) { return Bind(env, std::vector<Tensor*>(tensors)); }

bool Bind(Napi::Env env, const std::vector<Tensor*>& tensors) {
  for (Tensor* t : tensors) {
    napi_typedarray_type kind;
    size_t length = 0, offset = 0;
    void* data = nullptr;
    napi_value buffer;
    bool detached = false;
    if (napi_get_typedarray_info(env, t->holder, &kind, &length, &data, &buffer, &offset) != napi_ok ||
        napi_is_detached_arraybuffer(env, buffer, &detached) != napi_ok)
      return Require(env, false, "Could not view the memory of " + t->name);
    if (detached) length = 0;
    t->kind = kind;
    alignas(64) static uint8_t empty[64];  // kernels may form pointers into an empty tensor, never deref them
    t->data = length ? data : empty;
    t->length = int64_t(length);
    if (t->bare) {
      t->dims = {t->length};
      t->count = t->length;
    }
    if (!Require(env, t->count == t->length && !(detached && t->count),
                 "Dims of " + t->name + " multiply to " + std::to_string(t->count) + " but data has " +
                     std::to_string(t->length) + " elements" + (detached ? " (its buffer is detached)" : "")))
      return false;
  }
  return true;
}

bool GetNumber(Napi::Env env, Napi::Value v, const char* name, double& out) {
  if (!Require(env, v.IsNumber(), std::string("Expected a number for ") + name)) return false;
  out = v.As<Napi::Number>().DoubleValue();
  return true;
}

// Memory for a copy (free with std::free). Fresh pages fault one by one as the copy first writes
// them, which cost several times the copy itself (measured: 28 ms of CPU to copy 16 MiB); copies
// of 2 MiB or more ask for transparent huge pages, one fault per 2 MiB.
static uint8_t* AllocCopy(size_t bytes) {
  constexpr size_t kHuge = size_t(2) << 20;
  if (bytes < kHuge) return static_cast<uint8_t*>(std::malloc(bytes ? bytes : 1));
  const size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
  void* p = std::aligned_alloc(kHuge, rounded);
#ifdef MADV_HUGEPAGE
  if (p) madvise(p, rounded, MADV_HUGEPAGE);  // advice only: ignored where THP is off
#endif
  return static_cast<uint8_t*>(p);
}

void PromiseWorker::CopyRegion(uint8_t* dst, const uint8_t* src, const Copy& c) {
  if (c.upper_n <= 0) {
    if (c.bytes) std::memcpy(dst, src, c.bytes);
    return;
  }
  const size_t n = size_t(c.upper_n), row = n * c.elem;
  for (size_t i = 0; i < n; i++) std::memcpy(dst + i * row + i * c.elem, src + i * row + i * c.elem, (n - i) * c.elem);
}

PromiseWorker::PromiseWorker(Napi::Env env, const char* fn, std::initializer_list<Stage> stages)
    : Napi::AsyncWorker(env, "rome-native"), fn_(fn), deferred_(Napi::Promise::Deferred::New(env)) {
  for (const Stage& s : stages) {
    Tensor& t = *s.tensor;
    Copy c;
    c.name = t.name;
    c.holder = Napi::Reference<Napi::TypedArray>::New(t.holder, 1);
    c.bytes = t.bytes();
    c.elem = ElementSize(t.kind);
    c.upper_n = s.upper ? t.dim(0) : 0;
    c.write = s.write;
    c.data.reset(AllocCopy(c.bytes));
    if (!c.data) {
      error_ = fn_ + ": could not allocate " + std::to_string(c.bytes) + " bytes for a copy of " + t.name;
      return;
    }
    if (t.data) CopyRegion(c.data.get(), static_cast<const uint8_t*>(t.data), c);
    t.data = c.data.get();
    copies_.push_back(std::move(c));
  }
}

void PromiseWorker::Start(std::function<Status()> run, std::function<Napi::Value(Napi::Env)> done) {
  run_ = std::move(run);
  done_ = std::move(done);
  Queue();
}

void PromiseWorker::OnOK() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  // Results go back only into the buffers the call was given, still whole.
  std::vector<std::pair<uint8_t*, const Copy*>> targets;
  for (const Copy& c : copies_) {
    if (!c.write) continue;
    Tensor now;
    now.name = c.name;
    now.bare = true;
    now.holder = c.holder.Value();
    if (!Bind(env, {&now}) || now.bytes() != c.bytes) {
      if (env.IsExceptionPending()) env.GetAndClearPendingException();
      deferred_.Reject(MakeError(env, "ERR_NATIVE_ARGUMENT",
                                 "The buffer of " + c.name + " was detached or resized while " + fn_ +
                                     " ran; its result was discarded"));
      return;
    }
    targets.emplace_back(static_cast<uint8_t*>(now.data), &c);
  }
  for (const auto& [dst, c] : targets)
    if (c->bytes) CopyRegion(dst, c->data.get(), *c);
  if (!status_.ok()) {
    deferred_.Reject(MakeError(env, status_));
    return;
  }
  Napi::Value result = done_ ? done_(env) : env.Undefined();
  if (env.IsExceptionPending()) {
    deferred_.Reject(env.GetAndClearPendingException().Value());
    return;
  }
  deferred_.Resolve(result);
}

KernelCall::KernelCall(Napi::Env env, const char* fn, bool async, std::initializer_list<Stage> stages) : env_(env) {
  if (!async) return;
  worker_.reset(new PromiseWorker(env, fn, stages));
  if (!worker_->error().empty()) {
    Throw(env, "ERR_NATIVE_ARGUMENT", worker_->error());
    worker_.reset();
    ok_ = false;
  }
}

Napi::Value KernelCall::Run(std::function<Status()> run, std::function<Napi::Value(Napi::Env)> done) {
  if (worker_) {
    Napi::Promise p = worker_->Promise();
    worker_.release()->Start(std::move(run), std::move(done));  // deletes itself when complete
    return p;
  }
  Status s = run();
  if (!s.ok()) return ThrowStatus(env_, s);
  return done ? done(env_) : env_.Undefined();
}

}  // namespace rome
