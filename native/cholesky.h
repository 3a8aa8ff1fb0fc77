// Cholesky factorisation and solves for the edit's linear algebra: C = E[k kᵀ] is factored once
// (with an optional ridge λI) and C⁻¹k is then a pair of triangular solves. Matrices are (n, n)
// float64 row-major; only the upper triangle is read and the factor U (A = Uᵀ U) is written there
// (row-major upper U is column-major lower L, so this is LAPACK's dpotrf 'L' on the same memory).
// The strict lower triangle is never touched. LAPACKE when built with it, own blocked code else.
#pragma once
#include "common.h"
#include "moment.h"  // Backend

namespace rome {

struct CholeskyInfo {
  // Pivots are the squared diagonal of U, d_i = U_ii² (the Schur complement diagonal).
  double min_pivot = 0;
  double max_pivot = 0;
  // max d_i / min d_i = (max U_ii / min U_ii)²: a cheap lower bound on the 2-norm condition
  // number κ₂(A + λI) (exact for diagonal matrices). Good enough to warn about near-singular stats.
  double condition = 0;
  // On failure: the index i (0-based) whose pivot was not positive, and that pivot (may be NaN).
  int64_t fail_index = -1;
  double fail_pivot = 0;
};

/** a (n, n) upper ← U with Uᵀ U = A + ridge·I. On ERR_NOT_POSITIVE_DEFINITE the contents are
 *  partially factored (keep a copy to retry with a larger ridge). */
Status cholesky_factor(double* a,  // (n, n) in: A upper; out: U upper
                       int64_t n, double ridge, CholeskyInfo* info, Backend backend = Backend::Auto);

/** b (n, k) ← A⁻¹ b given the factor U from cholesky_factor (Uᵀ y = b, then U x = y). */
Status cholesky_solve(const double* u,  // (n, n) upper: U
                      int64_t n,
                      double* b,  // (n, k) in: right-hand sides; out: solutions
                      int64_t k, Backend backend = Backend::Auto);

bool have_lapack();

}  // namespace rome
