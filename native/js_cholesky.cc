// N-API wrappers of Cholesky factor/solve (cholesky.h); Promise-returning when `async`.
#include <memory>

#include "cholesky.h"
#include "napi_util.h"

namespace rome {

bool ParseBackend(Napi::Env env, Napi::Value v, Backend& out);

// choleskyFactor(a f64 (n, n), ridge, async, backend) -> { condition, minPivot, maxPivot }
static Napi::Value CholeskyFactor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tensor a;
  double ridge;
  Backend be;
  if (!GetTensor(env, info[0], "a", napi_float64_array, 2, 2, a) || !GetNumber(env, info[1], "ridge", ridge) ||
      !ParseBackend(env, info[3], be) || !Bind(env, {&a}))
    return env.Undefined();
  if (!Require(env, a.dim(0) == a.dim(1), "Expected a square matrix for a")) return env.Undefined();
  KernelCall call(env, "choleskyFactor", info[2].ToBoolean(), {{&a, true, true}});  // reads and writes the upper triangle
  if (!call.ok()) return env.Undefined();
  auto result = std::make_shared<CholeskyInfo>();
  double* p = a.as<double>();
  const int64_t n = a.dim(0);
  return call.Run([=] { return cholesky_factor(p, n, ridge, result.get(), be); },
                  [result](Napi::Env env) -> Napi::Value {
                    Napi::Object o = Napi::Object::New(env);
                    o.Set("condition", result->condition);
                    o.Set("minPivot", result->min_pivot);
                    o.Set("maxPivot", result->max_pivot);
                    return o;
                  });
}

// choleskySolve(u f64 (n, n), b f64 (n) | (n, k), async, backend): b <- A⁻¹ b in place
static Napi::Value CholeskySolve(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tensor u, b;
  Backend be;
  if (!GetTensor(env, info[0], "u", napi_float64_array, 2, 2, u) ||
      !GetTensor(env, info[1], "b", napi_float64_array, 1, 2, b) || !ParseBackend(env, info[3], be) ||
      !Bind(env, {&u, &b}))
    return env.Undefined();
  if (!Require(env, u.dim(0) == u.dim(1) && b.dim(0) == u.dim(0),
               "choleskySolve: b has " + std::to_string(b.dim(0)) + " rows but the factor is " +
                   std::to_string(u.dim(0)) + " square"))
    return env.Undefined();
  // the factor's upper triangle is read, b read and written
  KernelCall call(env, "choleskySolve", info[2].ToBoolean(), {{&u, false, true}, {&b, true}});
  if (!call.ok()) return env.Undefined();
  const double* up = u.as<double>();
  double* bp = b.as<double>();
  const int64_t n = u.dim(0), k = b.dims.size() == 2 ? b.dim(1) : 1;
  return call.Run([=] { return n && k ? cholesky_solve(up, n, bp, k, be) : Status::Ok(); }, nullptr);
}

void InitCholesky(Napi::Env env, Napi::Object exports) {
  exports.Set("choleskyFactor", Napi::Function::New(env, CholeskyFactor, "choleskyFactor"));
  exports.Set("choleskySolve", Napi::Function::New(env, CholeskySolve, "choleskySolve"));
}

}  // namespace rome
