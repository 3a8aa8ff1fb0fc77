// Restoration patching: the only work the trace sweep, the naive executor and activation patching
// do between onnxruntime segments. TypeScript builds a plan once (lib/trace/restore-plan.ts) and
// this kernel executes it straight into the buffer the next segment reads: runs of vectors copied
// from one source, or summed from two. Called by lib/ through the addon's `applyPlan`.
#pragma once
#include "common.h"

namespace rome {

/** Fields of one plan entry: dst, count, srcA, a, srcB, b (vector indices in units of `width`). */
constexpr int64_t kPlanFields = 6;

/** A source of a plan: a flat buffer of `length` floats, read as (length / width, width) vectors. */
struct PlanSource {
  const float* data;
  int64_t length;
};

/** For each entry (d, n, sa, a, sb, b), in order, for i in [0, n):
 *    dst[d + i] = sources[sa][a + i]                        when sb == -1
 *    dst[d + i] = sources[sa][a + i] + sources[sb][b + i]   otherwise (float32 sum)
 *  where x[k] is the k-th vector of `width` floats. Every entry is checked before anything is
 *  written (ERR_NATIVE_ARGUMENT naming the entry). Sources may be dst itself: entries run in order,
 *  copies as memmove, sums element by element. */
Status apply_plan(float* dst,                 // (dst_length)
                  int64_t dst_length,
                  const PlanSource* sources,  // (n_sources)
                  int64_t n_sources,
                  const int32_t* plan,        // (P, kPlanFields)
                  int64_t P, int64_t width);

}  // namespace rome
