// CPU kernel of restoration plans (see restore.h). Single-threaded on purpose: a sweep's plan
// moves at most a few MiB per segment, and entries may depend on earlier ones (a gather, then a
// patch over it), so they run in order.
#include "restore.h"

#include <cstring>

namespace rome {

static Status bad(int64_t p, const std::string& what) {
  return Status::Error("ERR_NATIVE_ARGUMENT", "applyPlan: plan entry " + std::to_string(p) + " " + what);
}

// [v, v + n) vectors of `width` lie within `length` floats (all in int64: v, n < 2^31, width < 2^31).
static bool within(int64_t v, int64_t n, int64_t width, int64_t length) {
  return v >= 0 && n >= 0 && (v + n) <= length / width;
}

Status apply_plan(float* dst, int64_t dst_length, const PlanSource* sources, int64_t n_sources, const int32_t* plan,
                  int64_t P, int64_t width) {
  if (width < 1) return Status::Error("ERR_NATIVE_ARGUMENT", "applyPlan: width must be at least 1");
  for (int64_t p = 0; p < P; p++) {
    const int32_t* e = plan + p * kPlanFields;
    const int64_t d = e[0], n = e[1], sa = e[2], a = e[3], sb = e[4], b = e[5];
    if (!within(d, n, width, dst_length)) return bad(p, "writes outside dst");
    if (sa < 0 || sa >= n_sources) return bad(p, "names source " + std::to_string(sa) + " of " + std::to_string(n_sources));
    if (!within(a, n, width, sources[sa].length)) return bad(p, "reads outside source " + std::to_string(sa));
    if (sb != -1) {
      if (sb < 0 || sb >= n_sources) return bad(p, "names source " + std::to_string(sb) + " of " + std::to_string(n_sources));
      if (!within(b, n, width, sources[sb].length)) return bad(p, "reads outside source " + std::to_string(sb));
    }
  }
  for (int64_t p = 0; p < P; p++) {
    const int32_t* e = plan + p * kPlanFields;
    const int64_t n = int64_t(e[1]) * width;
    float* out = dst + int64_t(e[0]) * width;
    const float* x = sources[e[2]].data + int64_t(e[3]) * width;
    if (e[4] == -1) {
      std::memmove(out, x, size_t(n) * sizeof(float));
    } else {
      const float* y = sources[e[4]].data + int64_t(e[5]) * width;
      for (int64_t i = 0; i < n; i++) out[i] = x[i] + y[i];
    }
  }
  return Status::Ok();
}

}  // namespace rome
