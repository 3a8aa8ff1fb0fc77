// N-API plumbing (see napi_util.h).
#include "napi_util.h"

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

static bool ViewArray(Napi::Env env, Napi::Value v, const char* name, napi_typedarray_type kind, Tensor& out) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != kind)
    return Require(env, false, std::string("Expected ") + KindName(kind) + " for " + name);
  Napi::TypedArray a = v.As<Napi::TypedArray>();
  out.length = int64_t(a.ElementLength());
  out.data = static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset();
  out.holder = a;
  return true;
}

bool GetArray(Napi::Env env, Napi::Value v, const char* name, napi_typedarray_type kind, Tensor& out) {
  if (!ViewArray(env, v, name, kind, out)) return false;
  out.dims = {out.length};
  return true;
}

bool GetTensor(Napi::Env env, Napi::Value v, const char* name, napi_typedarray_type kind, size_t min_rank,
               size_t max_rank, Tensor& out) {
  const std::string n(name);
  if (!Require(env, v.IsObject() && !v.IsTypedArray(), "Expected a { dims, type, data } tensor for " + n)) return false;
  Napi::Object o = v.As<Napi::Object>();
  Napi::Value type = o.Get("type");
  if (!Require(env, type.IsString() && type.As<Napi::String>().Utf8Value() == TypeName(kind),
               "Expected type '" + std::string(TypeName(kind)) + "' for " + n))
    return false;
  if (!ViewArray(env, o.Get("data"), (n + ".data").c_str(), kind, out)) return false;
  Napi::Value dv = o.Get("dims");
  if (!Require(env, dv.IsArray(), "Expected an array of dims for " + n)) return false;
  Napi::Array dims = dv.As<Napi::Array>();
  const size_t rank = dims.Length();
  if (!Require(env, rank >= min_rank && rank <= max_rank,
               "Expected rank between " + std::to_string(min_rank) + " and " + std::to_string(max_rank) + " for " + n +
                   " but received " + std::to_string(rank)))
    return false;
  out.dims.clear();
  int64_t product = 1;
  for (uint32_t i = 0; i < rank; i++) {
    Napi::Value d = dims.Get(i);
    const double x = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
    if (!Require(env, x >= 0 && x == double(int64_t(x)) && x < 9e15, "Expected non-negative integer dims for " + n))
      return false;
    out.dims.push_back(int64_t(x));
    product *= int64_t(x);
  }
  return Require(env, product == out.length,
                 "Dims of " + n + " multiply to " + std::to_string(product) + " but data has " +
                     std::to_string(out.length) + " elements");
}

bool GetNumber(Napi::Env env, Napi::Value v, const char* name, double& out) {
  if (!Require(env, v.IsNumber(), std::string("Expected a number for ") + name)) return false;
  out = v.As<Napi::Number>().DoubleValue();
  return true;
}

PromiseWorker::PromiseWorker(Napi::Env env, std::function<Status()> run, std::function<Napi::Value(Napi::Env)> done,
                             const std::vector<Napi::Object>& keep)
    : Napi::AsyncWorker(env, "rome-native"),
      deferred_(Napi::Promise::Deferred::New(env)),
      run_(std::move(run)),
      done_(std::move(done)) {
  for (const auto& o : keep) keep_.push_back(Napi::Persistent(o));
}

void PromiseWorker::OnOK() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
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

Napi::Value RunKernel(Napi::Env env, bool async, std::function<Status()> run, std::function<Napi::Value(Napi::Env)> done,
                      const std::vector<Napi::Object>& keep) {
  if (async) {
    auto* w = new PromiseWorker(env, std::move(run), std::move(done), keep);
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }
  Status s = run();
  if (!s.ok()) return ThrowStatus(env, s);
  return done ? done(env) : env.Undefined();
}

}  // namespace rome
