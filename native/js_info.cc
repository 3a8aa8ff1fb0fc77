// N-API: init (receives the RomeError class), capabilities, thread control.
#include "cholesky.h"
#include "moment.h"
#include "napi_util.h"
#ifdef ROME_HAVE_CUDA
#include "cuda_api.h"
#endif

#ifndef ROME_VERSION
#define ROME_VERSION "0.1.0"
#endif

namespace rome {

// init({ RomeError }): store the class for this environment (main thread or worker).
static Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Require(env, info[0].IsObject(), "init expects { RomeError }")) return env.Undefined();
  Napi::Value cls = info[0].As<Napi::Object>().Get("RomeError");
  if (!Require(env, cls.IsFunction(), "init expects { RomeError } with a class")) return env.Undefined();
  env.GetInstanceData<AddonData>()->rome_error = Napi::Persistent(cls.As<Napi::Function>());
  return env.Undefined();
}

static Napi::Value Capabilities(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("threads", get_threads());
  o.Set("openmp", have_openmp());
  o.Set("blas", ROME_BLAS_NAME);
  o.Set("lapack", have_lapack());
#ifdef ROME_HAVE_CUDA
  const int n = cuda::device_count();
  if (n > 0) {
    Napi::Object c = Napi::Object::New(env);
    c.Set("devices", n);
    c.Set("name", cuda::device_name(0));
#ifdef ROME_HAVE_CUSOLVER
    c.Set("cusolver", true);
#else
    c.Set("cusolver", false);
#endif
    o.Set("cuda", c);
  } else {
    o.Set("cuda", false);
  }
  o.Set("cudaCompiled", true);
#else
  o.Set("cuda", false);
  o.Set("cudaCompiled", false);
#endif
  o.Set("version", ROME_VERSION);
  return o;
}

// setThreads(n): n >= 1, or 0 for all cores. Process-wide (shared by worker threads).
static Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double n;
  if (!GetNumber(env, info[0], "threads", n) ||
      !Require(env, n >= 0 && n <= 1024 && n == double(int(n)), "Expected an integer threads in [0, 1024]"))
    return env.Undefined();
  set_threads(int(n));
  return Napi::Number::New(env, get_threads());
}

void InitInfo(Napi::Env env, Napi::Object exports) {
  exports.Set("init", Napi::Function::New(env, Init, "init"));
  exports.Set("capabilities", Napi::Function::New(env, Capabilities, "capabilities"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
}

}  // namespace rome
