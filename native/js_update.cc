// N-API wrappers of the low-rank updates with exact undo (update.h). Synchronous: one weight
// matrix (a few MB) per call.
#include "napi_util.h"
#include "update.h"

namespace rome {

// updateApply(w f32 (rows, cols), u f32 (rows, r), v f32 (cols, r)) -> { rows: Int32Array (nt), data: Float32Array (nt * cols) }
static Napi::Value UpdateApply(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tensor w, u, v;
  if (!GetTensor(env, info[0], "w", napi_float32_array, 2, 2, w) ||
      !GetTensor(env, info[1], "u", napi_float32_array, 2, 2, u) ||
      !GetTensor(env, info[2], "v", napi_float32_array, 2, 2, v) || !Bind(env, {&w, &u, &v}))
    return env.Undefined();
  const int64_t rows = w.dim(0), cols = w.dim(1), r = u.dim(1);
  if (!Require(env, u.dim(0) == rows && v.dim(0) == cols && v.dim(1) == r && r >= 1,
               "updateApply: u must be (" + std::to_string(rows) + ", r) and v (" + std::to_string(cols) + ", r)"))
    return env.Undefined();
  const int64_t nt = update_touched_rows(u.as<float>(), rows, r, nullptr);
  Napi::Int32Array touched = Napi::Int32Array::New(env, size_t(nt));
  Napi::Float32Array backup = Napi::Float32Array::New(env, size_t(nt * cols));
  if (env.IsExceptionPending()) return env.Undefined();  // allocation failed (RangeError)
  update_touched_rows(u.as<float>(), rows, r, touched.Data());
  Status s = update_apply(w.as<float>(), u.as<float>(), v.as<float>(), rows, cols, r, touched.Data(), nt, backup.Data());
  if (!s.ok()) return ThrowStatus(env, s);
  Napi::Object o = Napi::Object::New(env);
  o.Set("rows", touched);
  o.Set("data", backup);
  return o;
}

void InitUpdate(Napi::Env env, Napi::Object exports) {
  exports.Set("updateApply", Napi::Function::New(env, UpdateApply, "updateApply"));
}

}  // namespace rome
