// N-API: init (receives the RomeError class), capabilities, thread control (the addon's thread count,
// the calling thread's nice value).
#include "cholesky.h"
#include "moment.h"
#include "napi_util.h"
#ifdef __linux__
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
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
#ifdef __linux__
  o.Set("threadNice", true);
#else
  o.Set("threadNice", false);
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

// niceThread(increment): adds `increment` (-39 to 39) to the nice value of the calling OS thread alone
// (on Linux a nice value is per thread), clamped to [-20, 19] as nice(2) does; threads it creates
// later (onnxruntime's pools) inherit it. Returns the value now in effect. Elsewhere it changes
// nothing and returns null (capabilities().threadNice is false).
static Napi::Value NiceThread(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double n;
  if (!GetNumber(env, info[0], "increment", n) ||
      !Require(env, n >= -39 && n <= 39 && n == double(int(n)), "Expected an integer increment in [-39, 39]"))
    return env.Undefined();
#ifdef __linux__
  const auto tid = static_cast<id_t>(syscall(SYS_gettid));
  errno = 0;
  const int before = getpriority(PRIO_PROCESS, tid);
  if (errno != 0) return Throw(env, "ERR_NATIVE_THREAD", std::string("getpriority failed: ") + std::strerror(errno));
  const int target = std::min(19, std::max(-20, before + int(n)));
  if (setpriority(PRIO_PROCESS, tid, target) != 0)
    return Throw(env, "ERR_NATIVE_THREAD", "setpriority(" + std::to_string(target) + ") failed: " + std::strerror(errno) +
                                              " (lowering a nice value needs CAP_SYS_NICE; use a positive increment)");
  errno = 0;
  return Napi::Number::New(env, getpriority(PRIO_PROCESS, tid));
#else
  return env.Null();
#endif
}

void InitInfo(Napi::Env env, Napi::Object exports) {
  exports.Set("init", Napi::Function::New(env, Init, "init"));
  exports.Set("capabilities", Napi::Function::New(env, Capabilities, "capabilities"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("niceThread", Napi::Function::New(env, NiceThread, "niceThread"));
}

}  // namespace rome
