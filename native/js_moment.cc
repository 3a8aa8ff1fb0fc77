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

static bool Square(Napi::Env env, const Tensor& t) {
  return Require(env, t.dim(0) == t.dim(1), "Expected a square matrix for " + t.name);
}

// momentAccumulate(acc f64 (d, d), keys f32 (rows, d), async, backend) -> Promise<void> | void
static Napi::Value MomentAccumulate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tensor acc, keys;
  Backend be;
  if (!GetTensor(env, info[0], "acc", napi_float64_array, 2, 2, acc) ||
      !GetTensor(env, info[1], "keys", napi_float32_array, 2, 2, keys) || !ParseBackend(env, info[3], be) ||
      !Bind(env, {&acc, &keys}) || !Square(env, acc))
    return env.Undefined();
  if (!Require(env, keys.dim(1) == acc.dim(0), "momentAccumulate: keys have " + std::to_string(keys.dim(1)) +
                                                   " columns but acc is " + std::to_string(acc.dim(0)) + " square"))
    return env.Undefined();
  // acc's upper triangle is read and written, keys read
  KernelCall call(env, "momentAccumulate", info[2].ToBoolean(), {{&acc, true, true}, {&keys, false}});
  if (!call.ok()) return env.Undefined();
  double* a = acc.as<double>();
  const float* k = keys.as<float>();
  const int64_t rows = keys.dim(0), d = acc.dim(0);
  return call.Run([=] { return moment_accumulate(a, k, rows, d, be); }, nullptr);
}

// momentFinalize(out f64 (d, d), acc f64 (d, d), count): out = symmetric acc / count
static Napi::Value MomentFinalize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tensor out, acc;
  double count;
  if (!GetTensor(env, info[0], "out", napi_float64_array, 2, 2, out) ||
      !GetTensor(env, info[1], "acc", napi_float64_array, 2, 2, acc) || !GetNumber(env, info[2], "count", count) ||
      !Bind(env, {&out, &acc}) || !Square(env, out) || !Square(env, acc))
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
  if (!GetTensor(env, info[0], "keys", napi_float32_array, 2, 2, keys) || !Bind(env, {&keys}) ||
      !Require(env, keys.dim(1) <= 32768, "_benchRawSsyrk: keys may have at most 32768 columns"))  // (d, d) scratch
    return env.Undefined();
  KernelCall call(env, "_benchRawSsyrk", true, {{&keys, false}});
  if (!call.ok()) return env.Undefined();
  auto secs = std::make_shared<double>(0);
  const float* k = keys.as<float>();
  const int64_t rows = keys.dim(0), d = keys.dim(1);
  return call.Run([=] { *secs = bench_raw_ssyrk(k, rows, d); return Status::Ok(); },
                  [secs](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, *secs); });
}

void InitMoment(Napi::Env env, Napi::Object exports) {
  exports.Set("momentAccumulate", Napi::Function::New(env, MomentAccumulate, "momentAccumulate"));
  exports.Set("_benchRawSsyrk", Napi::Function::New(env, BenchRawSsyrk, "_benchRawSsyrk"));
  exports.Set("momentFinalize", Napi::Function::New(env, MomentFinalize, "momentFinalize"));
}

}  // namespace rome
