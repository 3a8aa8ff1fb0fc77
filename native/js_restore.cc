// N-API wrapper of the restoration-plan kernel (restore.h). Synchronous, on the caller's memory
// without copies: a plan moves at most a segment's batch (memcpy-sized, see
// `npm run bench -- hotpath`). lib/trace/restore-plan.ts builds and validates plans; here kinds,
// counts and every entry's bounds are re-checked.
#include "napi_util.h"
#include "restore.h"

namespace rome {

constexpr uint32_t kMaxSources = 64;

// applyPlan(dst Float32Array, sources Float32Array[], plan Int32Array (P * 6), width)
static Napi::Value ApplyPlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double width = 0;
  if (!Require(env, info[1].IsArray(), "applyPlan: expected an array of Float32Array for sources") ||
      !GetNumber(env, info[3], "width", width) ||
      !Require(env, width >= 1 && width <= double(kMaxDim) && width == double(int64_t(width)),
               "applyPlan: width must be an integer in [1, 2^31 - 1]"))
    return env.Undefined();
  Napi::Array list = info[1].As<Napi::Array>();
  const uint32_t n = list.Length();
  if (!Require(env, n <= kMaxSources, "applyPlan: at most " + std::to_string(kMaxSources) + " sources")) return env.Undefined();
  Tensor dst, plan;
  std::vector<Tensor> sources(n);
  std::vector<std::string> names(n);
  if (!GetArray(env, info[0], "dst", napi_float32_array, dst) || !GetArray(env, info[2], "plan", napi_int32_array, plan))
    return env.Undefined();
  for (uint32_t i = 0; i < n; i++) {
    names[i] = "sources[" + std::to_string(i) + "]";
    Napi::Value v = list.Get(i);  // may run a getter: every Get* comes before Bind
    if (env.IsExceptionPending() || !GetArray(env, v, names[i].c_str(), napi_float32_array, sources[i])) return env.Undefined();
  }
  std::vector<Tensor*> all = {&dst, &plan};
  for (auto& s : sources) all.push_back(&s);
  if (!Bind(env, all)) return env.Undefined();
  if (!Require(env, plan.length % kPlanFields == 0,
               "applyPlan: plan length " + std::to_string(plan.length) + " is not a multiple of " + std::to_string(kPlanFields)))
    return env.Undefined();
  std::vector<PlanSource> src(n);
  for (uint32_t i = 0; i < n; i++) src[i] = {sources[i].as<float>(), sources[i].length};
  Status s = apply_plan(dst.as<float>(), dst.length, src.data(), int64_t(n), plan.as<int32_t>(), plan.length / kPlanFields,
                        int64_t(width));
  return s.ok() ? env.Undefined() : ThrowStatus(env, s);
}

void InitRestore(Napi::Env env, Napi::Object exports) {
  exports.Set("applyPlan", Napi::Function::New(env, ApplyPlan, "applyPlan"));
}

}  // namespace rome
