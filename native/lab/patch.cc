// CPU kernels for restoration patching and gathers (see patch.h). Copies are memcpy of whole
// vectors; loops over batch rows run in parallel above kParallelBytes.
#include "patch.h"

#include <algorithm>
#include <cstring>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace rome {

// Above this many bytes written, copies use non-temporal (streaming) stores like glibc's memcpy
// does for large sizes: the destination bypasses the caches and no read-for-ownership is paid.
static constexpr size_t kStreamBytes = size_t(16) << 20;

// dst[0, n) = src[0, n); streaming stores when `stream` (caller issues the fence).
static inline void copy_floats(float* dst, const float* src, int64_t n, bool stream) {
#if defined(__SSE2__)
  if (stream) {
    int64_t i = 0;
    for (; i < n && (reinterpret_cast<uintptr_t>(dst + i) & 15); i++) dst[i] = src[i];
    for (; i + 16 <= n; i += 16) {
      _mm_stream_ps(dst + i, _mm_loadu_ps(src + i));
      _mm_stream_ps(dst + i + 4, _mm_loadu_ps(src + i + 4));
      _mm_stream_ps(dst + i + 8, _mm_loadu_ps(src + i + 8));
      _mm_stream_ps(dst + i + 12, _mm_loadu_ps(src + i + 12));
    }
    for (; i < n; i++) dst[i] = src[i];
    return;
  }
#endif
  (void)stream;
  std::memcpy(dst, src, size_t(n) * sizeof(float));
}

static inline void stream_fence(bool stream) {
#if defined(__SSE2__)
  if (stream) _mm_sfence();
#endif
  (void)stream;
}

static Status bad(std::string message) { return Status::Error("ERR_NATIVE_ARGUMENT", std::move(message)); }

static Status check_index(const int32_t* index, int64_t B, int64_t S) {
  for (int64_t b = 0; b < B; b++)
    if (index[b] < 0 || index[b] >= S)
      return bad("index[" + std::to_string(b) + "] = " + std::to_string(index[b]) + " is outside [0, " +
                 std::to_string(S) + ")");
  return Status::Ok();
}

// Plan entries (dstRow, pos, srcRow) sorted by (dstRow, pos) as CSR over rows; rejects duplicates.
struct RowPlan {
  std::vector<int64_t> start;  // (B + 1)
  std::vector<int64_t> order;  // (P) plan entry indices
};

static Status make_row_plan(const int32_t* plan, int64_t stride, int64_t P, int64_t B, int64_t T, int64_t R,
                            RowPlan& rp) {
  for (int64_t p = 0; p < P; p++) {
    const int32_t* e = plan + p * stride;
    if (e[0] < 0 || e[0] >= B || e[1] < 0 || e[1] >= T || (stride == 3 && (e[2] < 0 || e[2] >= R)))
      return bad("plan entry " + std::to_string(p) + " is out of range");
  }
  rp.order.resize(P);
  for (int64_t p = 0; p < P; p++) rp.order[p] = p;
  std::sort(rp.order.begin(), rp.order.end(), [&](int64_t a, int64_t b) {
    const int32_t *x = plan + a * stride, *y = plan + b * stride;
    return x[0] != y[0] ? x[0] < y[0] : x[1] < y[1];
  });
  for (int64_t i = 1; i < P; i++) {
    const int32_t *x = plan + rp.order[i - 1] * stride, *y = plan + rp.order[i] * stride;
    if (x[0] == y[0] && x[1] == y[1])
      return bad("plan names (row " + std::to_string(x[0]) + ", position " + std::to_string(x[1]) + ") twice");
  }
  rp.start.assign(B + 1, 0);
  for (int64_t p = 0; p < P; p++) rp.start[plan[p * stride] + 1]++;
  for (int64_t b = 0; b < B; b++) rp.start[b + 1] += rp.start[b];
  return Status::Ok();
}

Status gather_rows(float* dst, const float* src, const int32_t* index, int64_t B, int64_t S, int64_t inner) {
  Status s = check_index(index, B, S);
  if (!s.ok()) return s;
  const size_t bytes = size_t(inner) * sizeof(float);
  const bool stream = size_t(B) * bytes > kStreamBytes;
#pragma omp parallel for num_threads(get_threads()) schedule(static) if (size_t(B) * bytes > kParallelBytes && B > 1)
  for (int64_t b = 0; b < B; b++) copy_floats(dst + b * inner, src + int64_t(index[b]) * inner, inner, stream);
  stream_fence(stream);
  return Status::Ok();
}

Status patch_positions(float* dst, const float* src, const int32_t* plan, int64_t B, int64_t R, int64_t T,
                       int64_t D, int64_t P) {
  RowPlan rp;  // validates and rejects duplicates, so parallel writes never collide
  Status s = make_row_plan(plan, 3, P, B, T, R, rp);
  if (!s.ok()) return s;
  const size_t bytes = size_t(D) * sizeof(float);
#pragma omp parallel for num_threads(get_threads()) schedule(static) if (size_t(P) * bytes > kParallelBytes)
  for (int64_t p = 0; p < P; p++) {
    const int32_t* e = plan + p * 3;
    std::memcpy(dst + (int64_t(e[0]) * T + e[1]) * D, src + (int64_t(e[2]) * T + e[1]) * D, bytes);
  }
  return Status::Ok();
}

Status build_batch(float* dst, const float* src, const int32_t* index, const float* patch_src, const int32_t* plan,
                   int64_t B, int64_t S, int64_t T, int64_t D, int64_t R, int64_t P) {
  Status s = check_index(index, B, S);
  if (!s.ok()) return s;
  RowPlan rp;
  s = make_row_plan(plan, 3, P, B, T, R, rp);
  if (!s.ok()) return s;
  const int64_t row = T * D;
  const bool stream = size_t(B * row) * sizeof(float) > kStreamBytes;
#pragma omp parallel for num_threads(get_threads()) schedule(static) \
    if (size_t(B * row) * sizeof(float) > kParallelBytes && B > 1)
  for (int64_t b = 0; b < B; b++) {
    float* out = dst + b * row;                       // (T, D)
    const float* in = src + int64_t(index[b]) * row;  // (T, D)
    int64_t t = 0;                                    // next position not yet written
    for (int64_t k = rp.start[b]; k < rp.start[b + 1]; k++) {
      const int32_t* e = plan + rp.order[k] * 3;
      const int64_t pos = e[1];
      if (pos > t) copy_floats(out + t * D, in + t * D, (pos - t) * D, stream);
      copy_floats(out + pos * D, patch_src + (int64_t(e[2]) * T + pos) * D, D, stream);
      t = pos + 1;
    }
    if (t < T) copy_floats(out + t * D, in + t * D, (T - t) * D, stream);
  }
  stream_fence(stream);
  return Status::Ok();
}

Status component_restore(float* out, const float* mid, const float* component, const float* clean,
                         const uint8_t* mask, int64_t B, int64_t T, int64_t D, int64_t C) {
  if (C != 1 && C != B) return bad("clean must have 1 or " + std::to_string(B) + " rows but has " + std::to_string(C));
  const int64_t n = B * T;
#pragma omp parallel for num_threads(get_threads()) schedule(static) \
    if (size_t(n * D) * sizeof(float) * 3 > kParallelBytes && n > 1)
  for (int64_t bt = 0; bt < n; bt++) {
    const int64_t b = bt / T, t = bt % T;
    const float* m = mid + bt * D;
    const float* c = mask[bt] ? clean + ((C == 1 ? 0 : b) * T + t) * D : component + bt * D;
    float* o = out + bt * D;
    for (int64_t i = 0; i < D; i++) o[i] = m[i] + c[i];
  }
  return Status::Ok();
}

Status freeze(float* dst, const float* values, const int32_t* plan, int64_t B, int64_t T, int64_t D, int64_t P) {
  RowPlan rp;
  Status s = make_row_plan(plan, 2, P, B, T, 0, rp);
  if (!s.ok()) return s;
  for (int64_t p = 0; p < P; p++)
    std::memcpy(dst + (int64_t(plan[p * 2]) * T + plan[p * 2 + 1]) * D, values + p * D, size_t(D) * sizeof(float));
  return Status::Ok();
}

}  // namespace rome
