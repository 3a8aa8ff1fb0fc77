// The addon's own cache-blocked SYRK: C (d, d) upper triangle += alpha * Kᵀ K, accumulating in
// float64. Shared by the second-moment accumulation (K float32) and the trailing update of the
// blocked Cholesky factorisation (K float64). Rows of K are taken KC at a time and packed into
// column panels; a (MR x NR) register micro-kernel sums KC products in the input precision and
// adds the tile into the float64 C. Header-only template so both instantiations inline.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "common.h"

namespace rome {

template <class T>
struct SyrkShape {
  static constexpr int kVecBytes = 32;                  // AVX2 width; GCC splits it on narrower ISAs
  static constexpr int VL = kVecBytes / int(sizeof(T));  // lanes per vector: 8 floats, 4 doubles
  static constexpr int NR = 3 * VL;                     // micro-tile columns: 24 floats, 12 doubles
  static constexpr int MR = 4;                          // micro-tile rows
  static constexpr int KC = 256;                        // rows of K per packed slice
};

template <class T>
struct AlignedFree {
  void operator()(T* p) const { std::free(p); }
};
template <class T>
using AlignedBuf = std::unique_ptr<T[], AlignedFree<T>>;
template <class T>
AlignedBuf<T> aligned_buf(size_t n) {
  size_t bytes = ((n * sizeof(T) + 63) / 64) * 64;
  return AlignedBuf<T>(static_cast<T*>(std::aligned_alloc(64, bytes ? bytes : 64)));
}

// acc (MR, NR) = sum over k < kc of a[k, :MR] ⊗ b[k, :NR]; a (kc, MR) and b (kc, NR) packed.
template <class T>
static inline void syrk_micro(int kc, const T* __restrict a, const T* __restrict b, T* __restrict acc) {
  using S = SyrkShape<T>;
  typedef T V __attribute__((vector_size(S::kVecBytes)));
  V c[S::MR][3] = {};
  for (int k = 0; k < kc; k++) {
    V b0, b1, b2;
    std::memcpy(&b0, b + k * S::NR, sizeof(V));
    std::memcpy(&b1, b + k * S::NR + S::VL, sizeof(V));
    std::memcpy(&b2, b + k * S::NR + 2 * S::VL, sizeof(V));
    for (int i = 0; i < S::MR; i++) {
      const T ai = a[k * S::MR + i];
      c[i][0] += ai * b0;
      c[i][1] += ai * b1;
      c[i][2] += ai * b2;
    }
  }
  std::memcpy(acc, c, sizeof(c));
}

/** C (d, d) upper triangle (j >= i) += alpha * Kᵀ K for K (rows, d) with row stride ldk. */
template <class T>
void syrk_upper(int64_t rows, int64_t d, const T* K, int64_t ldk, double* C, int64_t ldc, double alpha) {
  using S = SyrkShape<T>;
  if (rows <= 0 || d <= 0) return;
  const int64_t np = (d + S::NR - 1) / S::NR;  // column panels
  const int64_t nm = S::NR / S::MR;            // micro-row panels per column panel
  AlignedBuf<T> bp = aligned_buf<T>(size_t(np) * S::KC * S::NR);       // (np, KC, NR)
  AlignedBuf<T> ap = aligned_buf<T>(size_t(np) * nm * S::KC * S::MR);  // (np*nm, KC, MR)
  const double work = double(rows) * double(d) * double(d);
  const int threads = work > double(kParallelFlops) ? get_threads() : 1;
#pragma omp parallel num_threads(threads)
  {
    alignas(64) T acc[S::MR * S::NR];  // (MR, NR)
    for (int64_t r0 = 0; r0 < rows; r0 += S::KC) {
      const int kc = int(std::min<int64_t>(S::KC, rows - r0));
#pragma omp for schedule(static)
      for (int64_t p = 0; p < np; p++) {
        T* B = bp.get() + p * S::KC * S::NR;
        T* A = ap.get() + p * nm * S::KC * S::MR;
        const int64_t j0 = p * S::NR, w = std::min<int64_t>(S::NR, d - j0);
        for (int k = 0; k < kc; k++) {
          const T* src = K + (r0 + k) * ldk + j0;
          T* dst = B + k * S::NR;
          for (int64_t j = 0; j < w; j++) dst[j] = src[j];
          for (int64_t j = w; j < S::NR; j++) dst[j] = T(0);
          for (int64_t m = 0; m < nm; m++)
            for (int i = 0; i < S::MR; i++) A[(m * S::KC + k) * S::MR + i] = dst[m * S::MR + i];
        }
      }
      // implicit barrier: the slice is packed
#pragma omp for schedule(dynamic, 1)
      for (int64_t p = 0; p < np; p++) {
        for (int64_t q = p; q < np; q++) {
          const T* B = bp.get() + q * S::KC * S::NR;
          for (int64_t m = 0; m < nm; m++) {
            const int64_t i0 = p * S::NR + m * S::MR;
            if (i0 >= d) break;
            syrk_micro<T>(kc, ap.get() + (p * nm + m) * S::KC * S::MR, B, acc);
            const int64_t ie = std::min<int64_t>(S::MR, d - i0);
            const int64_t jb = q * S::NR, je = std::min<int64_t>(S::NR, d - jb);
            for (int64_t ii = 0; ii < ie; ii++) {
              const int64_t i = i0 + ii;
              double* c = C + i * ldc + jb;
              const T* t = acc + ii * S::NR;
              for (int64_t jj = (q == p ? std::max<int64_t>(0, i - jb) : 0); jj < je; jj++) c[jj] += alpha * double(t[jj]);
            }
          }
        }
      }
      // implicit barrier before the buffers are repacked
    }
  }
}

}  // namespace rome
