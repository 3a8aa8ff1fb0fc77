// N-API wrappers of the patch/gather kernels (patch.h). Synchronous: they are memory copies of at
// most a layer's batch, microseconds to a millisecond. lib/native.ts validates first; here only
// kinds and sizes are re-checked.
#include <algorithm>

#include "napi_util.h"
#include "patch.h"

namespace rome {

static std::string Shape(const Tensor& t) {
  std::string s = "[";
  for (size_t i = 0; i < t.dims.size(); i++) s += (i ? ", " : "") + std::to_string(t.dims[i]);
  return s + "]";
}

// gatherRows(dst (B, ...), src (S, ...), index Int32Array (B))
static Napi::Value GatherRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tensor dst, src, index;
  if (!GetTensor(env, info[0], "dst", napi_float32_array, 1, 8, dst) ||
      !GetTensor(env, info[1], "src", napi_float32_array, 1, 8, src) ||
      !GetArray(env, info[2], "index", napi_int32_array, index) || !Bind(env, {&dst, &src, &index}))
    return env.Undefined();
  const int64_t B = dst.dim(0), S = src.dim(0);
  int64_t inner = 1;  // product of the trailing dims, within the checked extent
  for (size_t i = 1; i < dst.dims.size(); i++) inner *= dst.dims[i];
  if (!Require(env, src.dims.size() == dst.dims.size() && std::equal(dst.dims.begin() + 1, dst.dims.end(), src.dims.begin() + 1) &&
                        index.length == B,
               "gatherRows: shapes dst " + Shape(dst) + ", src " + Shape(src) + ", index [" + std::to_string(index.length) +
                   "] do not match"))
    return env.Undefined();
  Status s = gather_rows(dst.as<float>(), src.as<float>(), index.as<int32_t>(), B, S, inner);
  return s.ok() ? env.Undefined() : ThrowStatus(env, s);
}

// patchPositions(dst (B, T, D), src (R, T, D), plan Int32Array (P * 3))
static Napi::Value PatchPositions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tensor dst, src, plan;
  if (!GetTensor(env, info[0], "dst", napi_float32_array, 3, 3, dst) ||
      !GetTensor(env, info[1], "src", napi_float32_array, 3, 3, src) ||
      !GetArray(env, info[2], "plan", napi_int32_array, plan) || !Bind(env, {&dst, &src, &plan}))
    return env.Undefined();
  if (!Require(env, src.dim(1) == dst.dim(1) && src.dim(2) == dst.dim(2) && plan.length % 3 == 0,
               "patchPositions: shapes dst " + Shape(dst) + ", src " + Shape(src) + ", plan [" +
                   std::to_string(plan.length) + "] do not match"))
    return env.Undefined();
  Status s = patch_positions(dst.as<float>(), src.as<float>(), plan.as<int32_t>(), dst.dim(0), src.dim(0), dst.dim(1),
                             dst.dim(2), plan.length / 3);
  return s.ok() ? env.Undefined() : ThrowStatus(env, s);
}

// buildBatch(dst (B, T, D), src (S, T, D), index (B), patchSrc (R, T, D) | null, plan (P * 3) | null)
static Napi::Value BuildBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tensor dst, src, index, psrc, plan;
  if (!GetTensor(env, info[0], "dst", napi_float32_array, 3, 3, dst) ||
      !GetTensor(env, info[1], "src", napi_float32_array, 3, 3, src) ||
      !GetArray(env, info[2], "index", napi_int32_array, index))
    return env.Undefined();
  const bool patched = !info[3].IsNull() && !info[3].IsUndefined();
  if (patched && (!GetTensor(env, info[3], "patchSrc", napi_float32_array, 3, 3, psrc) ||
                  !GetArray(env, info[4], "plan", napi_int32_array, plan)))
    return env.Undefined();
  if (!(patched ? Bind(env, {&dst, &src, &index, &psrc, &plan}) : Bind(env, {&dst, &src, &index}))) return env.Undefined();
  if (!Require(env, src.dim(1) == dst.dim(1) && src.dim(2) == dst.dim(2) && index.length == dst.dim(0) &&
                        (!patched || (psrc.dim(1) == dst.dim(1) && psrc.dim(2) == dst.dim(2) && plan.length % 3 == 0)),
               "buildBatch: shapes dst " + Shape(dst) + ", src " + Shape(src) + ", index [" +
                   std::to_string(index.length) + "]" + (patched ? ", patchSrc " + Shape(psrc) : "") + " do not match"))
    return env.Undefined();
  Status s = build_batch(dst.as<float>(), src.as<float>(), index.as<int32_t>(), patched ? psrc.as<float>() : nullptr,
                         patched ? plan.as<int32_t>() : nullptr, dst.dim(0), src.dim(0), dst.dim(1), dst.dim(2),
                         patched ? psrc.dim(0) : 0, patched ? plan.length / 3 : 0);
  return s.ok() ? env.Undefined() : ThrowStatus(env, s);
}

// componentRestore(out, mid, component (B, T, D), clean (1 | B, T, D), mask Uint8Array (B * T))
static Napi::Value ComponentRestore(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tensor out, mid, comp, clean, mask;
  if (!GetTensor(env, info[0], "out", napi_float32_array, 3, 3, out) ||
      !GetTensor(env, info[1], "mid", napi_float32_array, 3, 3, mid) ||
      !GetTensor(env, info[2], "component", napi_float32_array, 3, 3, comp) ||
      !GetTensor(env, info[3], "clean", napi_float32_array, 3, 3, clean) ||
      !GetArray(env, info[4], "mask", napi_uint8_array, mask) || !Bind(env, {&out, &mid, &comp, &clean, &mask}))
    return env.Undefined();
  const int64_t B = out.dim(0), T = out.dim(1), D = out.dim(2);
  if (!Require(env, mid.dims == out.dims && comp.dims == out.dims && clean.dim(1) == T && clean.dim(2) == D &&
                        (clean.dim(0) == 1 || clean.dim(0) == B) && mask.length == B * T,
               "componentRestore: shapes out " + Shape(out) + ", mid " + Shape(mid) + ", component " + Shape(comp) +
                   ", clean " + Shape(clean) + ", mask [" + std::to_string(mask.length) + "] do not match"))
    return env.Undefined();
  Status s = component_restore(out.as<float>(), mid.as<float>(), comp.as<float>(), clean.as<float>(), mask.as<uint8_t>(),
                               B, T, D, clean.dim(0));
  return s.ok() ? env.Undefined() : ThrowStatus(env, s);
}

// freeze(dst (B, T, D), values (P, D), plan Int32Array (P * 2))
static Napi::Value Freeze(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tensor dst, values, plan;
  if (!GetTensor(env, info[0], "dst", napi_float32_array, 3, 3, dst) ||
      !GetTensor(env, info[1], "values", napi_float32_array, 2, 2, values) ||
      !GetArray(env, info[2], "plan", napi_int32_array, plan) || !Bind(env, {&dst, &values, &plan}))
    return env.Undefined();
  if (!Require(env, values.dim(1) == dst.dim(2) && plan.length == 2 * values.dim(0),
               "freeze: shapes dst " + Shape(dst) + ", values " + Shape(values) + ", plan [" +
                   std::to_string(plan.length) + "] do not match"))
    return env.Undefined();
  Status s = freeze(dst.as<float>(), values.as<float>(), plan.as<int32_t>(), dst.dim(0), dst.dim(1), dst.dim(2), values.dim(0));
  return s.ok() ? env.Undefined() : ThrowStatus(env, s);
}

void InitPatch(Napi::Env env, Napi::Object exports) {
  exports.Set("gatherRows", Napi::Function::New(env, GatherRows, "gatherRows"));
  exports.Set("patchPositions", Napi::Function::New(env, PatchPositions, "patchPositions"));
  exports.Set("buildBatch", Napi::Function::New(env, BuildBatch, "buildBatch"));
  exports.Set("componentRestore", Napi::Function::New(env, ComponentRestore, "componentRestore"));
  exports.Set("freeze", Napi::Function::New(env, Freeze, "freeze"));
}

}  // namespace rome
