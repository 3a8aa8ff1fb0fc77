// Second-moment statistics of MLP keys for ROME: acc += Kᵀ K over blocks of keys, in float64, so
// that C = E[k kᵀ] = acc / count over millions of tokens keeps its precision. Only the upper
// triangle (j >= i) of acc is maintained; moment_finalize symmetrises. CUDA twin in moment.cu.
#pragma once
#include "common.h"

namespace rome {

enum class Backend { Auto, Own, Blas };

/** acc (d, d) upper += Kᵀ K. Own kernel: cache-blocked, float32 products summed over 256-row
 *  slices then added into float64. BLAS: cblas_ssyrk over 4096-row chunks into a float32 buffer,
 *  added into float64. Backend::Blas without OpenBLAS returns an error. */
Status moment_accumulate(double* acc,        // (d, d) upper triangle
                         const float* keys,  // (rows, d)
                         int64_t rows, int64_t d, Backend backend = Backend::Auto);

/** out (d, d) full symmetric = acc / count, mirrored from the upper triangle. out may be acc. */
void moment_finalize(double* out, const double* acc, int64_t d, double count);

bool have_blas();

/** Benchmark baseline: one plain cblas_ssyrk of keys (rows, d) into a float32 (d, d); returns its
 *  seconds, or -1 without OpenBLAS. */
double bench_raw_ssyrk(const float* keys, int64_t rows, int64_t d);

}  // namespace rome
