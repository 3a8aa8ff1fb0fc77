// CPU second-moment accumulation (see moment.h): the own cache-blocked kernel (syrk.h) and the
// OpenBLAS path, both into a float64 upper triangle.
#include "moment.h"

#include <chrono>
#include <vector>

#include "syrk.h"

#ifdef ROME_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace rome {

bool have_blas() {
#ifdef ROME_HAVE_OPENBLAS
  return true;
#else
  return false;
#endif
}

Status moment_accumulate(double* acc, const float* keys, int64_t rows, int64_t d, Backend backend) {
  if (backend == Backend::Auto) backend = have_blas() ? Backend::Blas : Backend::Own;
  if (backend == Backend::Own) {
    syrk_upper<float>(rows, d, keys, d, acc, d, 1.0);
    return Status::Ok();
  }
#ifdef ROME_HAVE_OPENBLAS
  if (rows == 0 || d == 0) return Status::Ok();  // ssyrk rejects a zero leading dimension
  // float32 sums over at most kChunk rows (as ssyrk itself), float64 across chunks.
  constexpr int64_t kChunk = 4096;
  AlignedBuf<float> tmp = aligned_buf<float>(size_t(d) * size_t(d));  // (d, d) upper
  for (int64_t r0 = 0; r0 < rows; r0 += kChunk) {
    const int64_t kc = std::min<int64_t>(kChunk, rows - r0);
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, int(d), int(kc), 1.0f, keys + r0 * d, int(d), 0.0f,
                tmp.get(), int(d));
    const float* t = tmp.get();
#pragma omp parallel for num_threads(get_threads()) schedule(dynamic, 16) if (d * d > 1 << 18)
    for (int64_t i = 0; i < d; i++)
      for (int64_t j = i; j < d; j++) acc[i * d + j] += double(t[i * d + j]);
  }
  return Status::Ok();
#else
  return Status::Error("ERR_NATIVE_ARGUMENT", "the addon was built without OpenBLAS (ROME_USE_BLAS=OFF or not found)");
#endif
}

double bench_raw_ssyrk(const float* keys, int64_t rows, int64_t d) {
#ifdef ROME_HAVE_OPENBLAS
  if (rows == 0 || d == 0) return 0;
  AlignedBuf<float> c = aligned_buf<float>(size_t(d) * size_t(d));  // (d, d)
  const auto t0 = std::chrono::steady_clock::now();
  cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, int(d), int(rows), 1.0f, keys, int(d), 0.0f, c.get(), int(d));
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
#else
  (void)keys, (void)rows, (void)d;
  return -1;
#endif
}

void moment_finalize(double* out, const double* acc, int64_t d, double count) {
  // Diagonal and upper first (in place safe), then mirror into the lower triangle.
  for (int64_t i = 0; i < d; i++)
    for (int64_t j = i; j < d; j++) out[i * d + j] = count > 0 ? acc[i * d + j] / count : 0.0;
  for (int64_t i = 0; i < d; i++)
    for (int64_t j = 0; j < i; j++) out[i * d + j] = out[j * d + i];
}

}  // namespace rome
