// N-API wrappers of the second-moment kernels (moment.h). Accumulation runs on libuv's pool and
// returns a Promise when `async` is true (blocks of keys take milliseconds to seconds).
#include "moment.h"
#include <memory>

#include "napi_util.h"

namespace rome {

bool ParseBackend(Napi::Env env, Napi::Value v, Backend& out) {
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "auto";
  if (s == "auto") out = Backend::Auto;
  else if (s == "own") out = Backend::Own;
  else if (s == "blas") out = Backend::Blas;
  else return Require(env, false, "Expected backend 'auto', 'own' or 'blas' but received '" + s + "'");
  return true;
}

static bool GetSquare(Napi::Env env, Napi::Value v, const char* name, Tensor& t) {
  return GetTensor(env, v, name, napi_float64_array, 2, 2, t) &&
         Require(env, t.dim(0) == t.dim(1), std::string("Expected a square matrix for ") + name);
}

// momentAccumulate(acc f64 (d, d), keys f32 (rows, d), async, backend) -> Promise<void> | void
static Napi::Value MomentAccumulate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tensor acc, keys;
  Backend be;
  if (!GetSquare(env, info[0], "acc", acc) || !GetTensor(env, info[1], "keys", napi_float32_array, 2, 2, keys) ||
      !ParseBackend(env, info[3], be))
    return env.Undefined();
  if (!Require(env, keys.dim(1) == acc.dim(0), "momentAccumulate: keys have " + std::to_string(keys.dim(1)) +
                                                   " columns but acc is " + std::to_string(acc.dim(0)) + " square"))
    return env.Undefined();
  double* a = acc.as<double>();
  const float* k = keys.as<float>();
  const int64_t rows = keys.dim(0), d = acc.dim(0);
  return RunKernel(env, info[2].ToBoolean(), [=] { return moment_accumulate(a, k, rows, d, be); }, nullptr,
                   {acc.holder, keys.holder});
}

// momentMerge(acc f64 (d, d), other f64 (d, d)): acc upper += other upper
static Napi::Value MomentMerge(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tensor acc, other;
  if (!GetSquare(env, info[0], "acc", acc) || !GetSquare(env, info[1], "other", other)) return env.Undefined();
  if (!Require(env, acc.dims == other.dims, "momentMerge: acc and other differ in size")) return env.Undefined();
  moment_merge(acc.as<double>(), other.as<double>(), acc.dim(0));
  return env.Undefined();
}

// momentFinalize(out f64 (d, d), acc f64 (d, d), count): out = symmetric acc / count
static Napi::Value MomentFinalize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tensor out, acc;
  double count;
  if (!GetSquare(env, info[0], "out", out) || !GetSquare(env, info[1], "acc", acc) ||
      !GetNumber(env, info[2], "count", count))
    return env.Undefined();
  if (!Require(env, acc.dims == out.dims, "momentFinalize: out and acc differ in size")) return env.Undefined();
  moment_finalize(out.as<double>(), acc.as<double>(), acc.dim(0), count);
  return env.Undefined();
}

// _benchRawSsyrk(keys f32 (rows, d)) -> Promise<seconds>: the plain OpenBLAS ssyrk baseline of
// scripts/bench-native.ts (-1 without OpenBLAS). Not part of the API.
static Napi::Value BenchRawSsyrk(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tensor keys;
  if (!GetTensor(env, info[0], "keys", napi_float32_array, 2, 2, keys)) return env.Undefined();
  auto secs = std::make_shared<double>(0);
  const float* k = keys.as<float>();
  const int64_t rows = keys.dim(0), d = keys.dim(1);
  return RunKernel(env, true, [=] { *secs = bench_raw_ssyrk(k, rows, d); return Status::Ok(); },
                   [secs](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, *secs); }, {keys.holder});
}

void InitMoment(Napi::Env env, Napi::Object exports) {
  exports.Set("momentAccumulate", Napi::Function::New(env, MomentAccumulate, "momentAccumulate"));
  exports.Set("momentMerge", Napi::Function::New(env, MomentMerge, "momentMerge"));
  exports.Set("_benchRawSsyrk", Napi::Function::New(env, BenchRawSsyrk, "_benchRawSsyrk"));
  exports.Set("momentFinalize", Napi::Function::New(env, MomentFinalize, "momentFinalize"));
}

}  // namespace rome
