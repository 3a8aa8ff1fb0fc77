// CPU Cholesky (see cholesky.h). Own code: blocked right-looking; each block of kNB rows is
// factored row by row (which also solves the panel U12), then the trailing matrix gets
// A22 -= U12ᵀ U12 through the shared cache-blocked SYRK kernel (syrk.h) in float64.
#include "cholesky.h"

#include <cmath>
#include <cstdio>

#include "syrk.h"

#ifdef ROME_HAVE_LAPACKE
#include <lapacke.h>
#endif

namespace rome {

bool have_lapack() {
#ifdef ROME_HAVE_LAPACKE
  return true;
#else
  return false;
#endif
}

static Status not_pd(int64_t i, double pivot, int64_t n) {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "Matrix is not positive definite: pivot %lld of %lld is %.6g (smallest allowed is > 0); "
                "add a ridge (e.g. { ridge: 1e-6 }) or collect more statistics",
                (long long)i, (long long)n, pivot);
  Status s = Status::Error("ERR_NOT_POSITIVE_DEFINITE", buf);
  s.details = {{"index", double(i)}, {"pivot", pivot}};
  return s;
}

static void fill_info(const double* a, int64_t n, CholeskyInfo* info) {
  double lo = INFINITY, hi = 0;
  for (int64_t i = 0; i < n; i++) {
    const double p = a[i * n + i] * a[i * n + i];
    lo = std::min(lo, p);
    hi = std::max(hi, p);
  }
  info->min_pivot = n ? lo : 0;
  info->max_pivot = hi;
  info->condition = n ? hi / lo : 0;
  info->fail_index = -1;
}

static constexpr int64_t kNB = 128;

static Status factor_own(double* a, int64_t n, CholeskyInfo* info) {
  for (int64_t k0 = 0; k0 < n; k0 += kNB) {
    const int64_t k1 = std::min(n, k0 + kNB);
    for (int64_t i = k0; i < k1; i++) {
      const double pivot = a[i * n + i];
      if (!(pivot > 0)) {
        info->fail_index = i;
        info->fail_pivot = pivot;
        return not_pd(i, pivot, n);
      }
      const double uii = std::sqrt(pivot), inv = 1.0 / uii;
      double* ui = a + i * n;  // row i: U[i, i..n)
      ui[i] = uii;
      for (int64_t j = i + 1; j < n; j++) ui[j] *= inv;
      // rows of this block below i: a[m, m..n) -= U[i, m] U[i, m..n)
#pragma omp parallel for num_threads(get_threads()) schedule(static) if ((k1 - i) * (n - i) > (1 << 17))
      for (int64_t m = i + 1; m < k1; m++) {
        const double f = ui[m];
        double* am = a + m * n;
        for (int64_t j = m; j < n; j++) am[j] -= f * ui[j];
      }
    }
    if (k1 < n) syrk_upper<double>(k1 - k0, n - k1, a + k0 * n + k1, n, a + k1 * n + k1, n, -1.0);
  }
  fill_info(a, n, info);
  return Status::Ok();
}

Status cholesky_factor(double* a, int64_t n, double ridge, CholeskyInfo* info, Backend backend) {
  CholeskyInfo local;
  if (!info) info = &local;
  if (ridge != 0)
    for (int64_t i = 0; i < n; i++) a[i * n + i] += ridge;
  if (backend == Backend::Auto) backend = have_lapack() ? Backend::Blas : Backend::Own;
  if (backend == Backend::Own) return factor_own(a, n, info);
#ifdef ROME_HAVE_LAPACKE
  if (n == 0) return Status::Ok();
  const lapack_int r = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', lapack_int(n), a, lapack_int(n));
  if (r > 0) {  // the failing pivot is left on the diagonal by (Open)LAPACK's potf2
    info->fail_index = int64_t(r) - 1;
    info->fail_pivot = a[(r - 1) * n + (r - 1)];
    return not_pd(info->fail_index, info->fail_pivot, n);
  }
  if (r < 0) return Status::Error("ERR_NATIVE_ARGUMENT", "LAPACKE_dpotrf rejected argument " + std::to_string(-r));
  fill_info(a, n, info);
  return Status::Ok();
#else
  return Status::Error("ERR_NATIVE_ARGUMENT", "the addon was built without LAPACKE (ROME_USE_BLAS=OFF or not found)");
#endif
}

// Columns [c0, c1) of b (n, k): forward Uᵀ y = b (right-looking, contiguous rows of U), then
// backward U x = y.
static void solve_cols(const double* u, int64_t n, double* b, int64_t k, int64_t c0, int64_t c1) {
  for (int64_t i = 0; i < n; i++) {
    const double* ui = u + i * n;
    double* bi = b + i * k;
    const double inv = 1.0 / ui[i];
    for (int64_t c = c0; c < c1; c++) bi[c] *= inv;
    if (c1 - c0 == 1) {
      const double yi = bi[c0];
      for (int64_t j = i + 1; j < n; j++) b[j * k + c0] -= ui[j] * yi;
    } else {
      for (int64_t j = i + 1; j < n; j++) {
        const double f = ui[j];
        double* bj = b + j * k;
        for (int64_t c = c0; c < c1; c++) bj[c] -= f * bi[c];
      }
    }
  }
  for (int64_t i = n - 1; i >= 0; i--) {
    const double* ui = u + i * n;
    double* bi = b + i * k;
    if (c1 - c0 == 1) {
      double s = bi[c0];
      for (int64_t j = i + 1; j < n; j++) s -= ui[j] * b[j * k + c0];
      bi[c0] = s / ui[i];
    } else {
      for (int64_t j = i + 1; j < n; j++) {
        const double f = ui[j];
        const double* bj = b + j * k;
        for (int64_t c = c0; c < c1; c++) bi[c] -= f * bj[c];
      }
      const double inv = 1.0 / ui[i];
      for (int64_t c = c0; c < c1; c++) bi[c] *= inv;
    }
  }
}

Status cholesky_solve(const double* u, int64_t n, double* b, int64_t k, Backend backend) {
  if (backend == Backend::Auto) backend = have_lapack() ? Backend::Blas : Backend::Own;
  if (backend == Backend::Own) {
    const int64_t threads = (double(n) * n * k > double(kParallelFlops) && k > 1) ? std::min<int64_t>(get_threads(), k) : 1;
#pragma omp parallel for num_threads(int(threads)) schedule(static) if (threads > 1)
    for (int64_t t = 0; t < threads; t++) solve_cols(u, n, b, k, k * t / threads, k * (t + 1) / threads);
    return Status::Ok();
  }
#ifdef ROME_HAVE_LAPACKE
  if (n == 0 || k == 0) return Status::Ok();
  const lapack_int r = LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'U', lapack_int(n), lapack_int(k), u, lapack_int(n), b, lapack_int(k));
  if (r != 0) return Status::Error("ERR_NATIVE_ARGUMENT", "LAPACKE_dpotrs rejected argument " + std::to_string(-r));
  return Status::Ok();
#else
  return Status::Error("ERR_NATIVE_ARGUMENT", "the addon was built without LAPACKE (ROME_USE_BLAS=OFF or not found)");
#endif
}

}  // namespace rome
