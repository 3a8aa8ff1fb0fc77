// Test program part two: second-moment accumulation and Cholesky factor/solve against naive
// float64 references (small sizes) and residual checks (3072).
#include <array>
#include <cstring>

#include "cholesky.h"
#include "harness.h"
#include "moment.h"
#include "moment_merge.h"

using namespace rome;

static void naive_moment(std::vector<double>& acc, const std::vector<float>& k, int64_t rows, int64_t d) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t i = 0; i < d; i++) {
      const double a = k[r * d + i];
      for (int64_t j = i; j < d; j++) acc[i * d + j] += a * double(k[r * d + j]);
    }
}

static double upper_maxdiff(const std::vector<double>& a, const std::vector<double>& b, int64_t d) {
  double m = 0;
  for (int64_t i = 0; i < d; i++) m = std::max(m, rt::maxdiff(&a[i * d + i], &b[i * d + i], size_t(d - i)));
  return m;
}

void test_moment() {
  std::vector<Backend> backends = {Backend::Own};
  if (have_blas()) backends.push_back(Backend::Blas);
  for (auto [rows, d] : std::vector<std::array<int64_t, 2>>{{1, 1}, {7, 7}, {33, 33}, {300, 130}, {1, 97}, {260, 3072}}) {
    auto k1 = rt::randn<float>(rows * d), k2 = rt::randn<float>(7 * d);
    std::vector<double> ref(d * d, 0.0);
    naive_moment(ref, k1, rows, d);
    naive_moment(ref, k2, 7, d);
    for (Backend be : backends) {
      const std::string name = std::string(be == Backend::Own ? "own " : "blas ") + rt::sz({rows, d});
      std::vector<double> acc(d * d, 0.0);
      for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j < i; j++) acc[i * d + j] = -7.0;  // lower triangle must stay untouched
      Status s = moment_accumulate(acc.data(), k1.data(), rows, d, be);
      if (s.ok()) s = moment_accumulate(acc.data(), k2.data(), 7, d, be);
      rt::check_close("moment_accumulate " + name, s.ok() ? upper_maxdiff(acc, ref, d) : 1e30, 2e-6 * double(rows + 7) + 1e-6);
      bool lower = true;
      for (int64_t i = 0; i < d && lower; i++)
        for (int64_t j = 0; j < i; j++) lower = lower && acc[i * d + j] == -7.0;
      rt::check(lower, "moment_accumulate leaves the lower triangle " + name);
    }
  }
  // merge and finalize: two halves merged equal the whole; finalize divides and mirrors
  {
    const int64_t d = 33, rows = 50;
    auto k = rt::randn<float>(2 * rows * d);
    std::vector<double> a(d * d, 0.0), b(d * d, 0.0), whole(d * d, 0.0);
    moment_accumulate(a.data(), k.data(), rows, d);
    moment_accumulate(b.data(), k.data() + rows * d, rows, d);
    for (size_t i = 0; i < whole.size(); i++) whole[i] = a[i] + b[i];
    moment_merge(a.data(), b.data(), d);
    rt::check_close("moment_merge (33)", upper_maxdiff(a, whole, d), 0);
    std::vector<double> mean(d * d);
    moment_finalize(mean.data(), a.data(), d, double(2 * rows));
    double m = 0;
    for (int64_t i = 0; i < d; i++)
      for (int64_t j = 0; j < d; j++) m = std::max(m, std::fabs(mean[i * d + j] - whole[std::min(i, j) * d + std::max(i, j)] / double(2 * rows)));
    rt::check_close("moment_finalize symmetric mean (33)", m, 0);
    moment_finalize(a.data(), a.data(), d, double(2 * rows));
    rt::check_close("moment_finalize in place (33)", rt::maxdiff(a.data(), mean.data(), a.size()), 0);
  }
}

// SPD test matrix: KᵀK / m + shift·I, K (m, n) random.
static std::vector<double> spd(int64_t n, int64_t m, double shift) {
  auto k = rt::randn<float>(m * n);
  std::vector<double> a(n * n, 0.0);
  naive_moment(a, k, m, n);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = i; j < n; j++) a[i * n + j] = a[j * n + i] = a[i * n + j] / m + (i == j ? shift : 0.0);
  return a;
}

static void naive_cholesky(std::vector<double>& a, int64_t n) {  // upper U, Uᵀ U = A
  for (int64_t i = 0; i < n; i++) {
    double s = a[i * n + i];
    for (int64_t m = 0; m < i; m++) s -= a[m * n + i] * a[m * n + i];
    a[i * n + i] = std::sqrt(s);
    for (int64_t j = i + 1; j < n; j++) {
      double t = a[i * n + j];
      for (int64_t m = 0; m < i; m++) t -= a[m * n + i] * a[m * n + j];
      a[i * n + j] = t / a[i * n + i];
    }
  }
}

// max |A x - b| / max |b| using the full symmetric A.
static double residual(const std::vector<double>& a, const std::vector<double>& x, const std::vector<double>& b, int64_t n, int64_t k) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++)
    for (int64_t c = 0; c < k; c++) {
      double s = 0;
      for (int64_t j = 0; j < n; j++) s += a[i * n + j] * x[j * k + c];
      num = std::max(num, std::fabs(s - b[i * k + c]));
      den = std::max(den, std::fabs(b[i * k + c]));
    }
  return num / den;
}

void test_cholesky() {
  std::vector<Backend> backends = {Backend::Own};
  if (have_lapack()) backends.push_back(Backend::Blas);
  for (int64_t n : {1, 7, 33, 130, 257}) {
    const auto a = spd(n, n + 10, 0.1);
    auto ref = a;
    naive_cholesky(ref, n);
    for (Backend be : backends) {
      const std::string name = std::string(be == Backend::Own ? "own " : "lapack ") + rt::sz({n, n});
      auto u = a;
      for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < i; j++) u[i * n + j] = 42.0;  // strict lower stays untouched
      CholeskyInfo info;
      Status s = cholesky_factor(u.data(), n, 0.0, &info, be);
      std::vector<double> uu(n * n, 0.0), rr(n * n, 0.0);
      bool lower = true;
      for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
          if (j >= i) uu[i * n + j] = u[i * n + j], rr[i * n + j] = ref[i * n + j];
          else lower = lower && u[i * n + j] == 42.0;
        }
      rt::check_close("cholesky_factor " + name, s.ok() ? rt::maxdiff(uu.data(), rr.data(), uu.size()) : 1e30, 1e-10);
      rt::check(lower, "cholesky_factor leaves the strict lower triangle " + name);
      for (int64_t k : {1, 5}) {
        auto b = rt::randn<double>(n * k), x = b;
        s = cholesky_solve(u.data(), n, x.data(), k, be);
        rt::check_close("cholesky_solve " + name + " k=" + std::to_string(k), s.ok() ? residual(a, x, b, n, k) : 1e30, 1e-10);
      }
    }
  }
  // 3072: residual checks on a well-conditioned SPD matrix; own and LAPACK agree
  {
    const int64_t n = 3072;
    std::vector<double> a(n * n);
    auto r = rt::randn<double>(n * n, 0.01);
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = i; j < n; j++) a[i * n + j] = a[j * n + i] = (i == j ? 1.0 + 0.01 * std::sqrt(double(n)) * 3 : r[i * n + j]);
    std::vector<std::vector<double>> factors;
    for (Backend be : backends) {
      const std::string name = std::string(be == Backend::Own ? "own " : "lapack ") + rt::sz({n, n});
      auto u = a;
      CholeskyInfo info;
      Status s = cholesky_factor(u.data(), n, 0.0, &info, be);
      auto b = rt::randn<double>(n * 3), x = b;
      if (s.ok()) s = cholesky_solve(u.data(), n, x.data(), 3, be);
      rt::check_close("cholesky factor+solve residual " + name, s.ok() ? residual(a, x, b, n, 3) : 1e30, 1e-11);
      factors.push_back(std::move(u));
    }
    if (factors.size() == 2) {
      double m = 0;
      for (int64_t i = 0; i < n; i++) m = std::max(m, rt::maxdiff(&factors[0][i * n + i], &factors[1][i * n + i], size_t(n - i)));
      rt::check_close("cholesky own vs lapack (3072)", m, 1e-11);
    }
  }
  // ridge, condition estimate, not positive definite
  for (Backend be : backends) {
    const std::string tag = be == Backend::Own ? " own" : " lapack";
    const int64_t n = 9;
    std::vector<double> diag(n * n, 0.0);
    for (int64_t i = 0; i < n; i++) diag[i * n + i] = double(i + 1);
    CholeskyInfo info;
    auto u = diag;
    Status s = cholesky_factor(u.data(), n, 1.0, &info, be);
    rt::check(s.ok() && std::fabs(info.condition - 10.0 / 2.0) < 1e-12 && std::fabs(info.min_pivot - 2.0) < 1e-12 &&
                  std::fabs(u[0] - std::sqrt(2.0)) < 1e-15,
              "cholesky ridge and condition estimate" + tag);
    auto bad = diag;
    bad[5 * n + 5] = -0.5;
    s = cholesky_factor(bad.data(), n, 0.0, &info, be);
    rt::check(s.code == "ERR_NOT_POSITIVE_DEFINITE" && info.fail_index == 5 && info.fail_pivot == -0.5 &&
                  s.message.find("pivot 5 of 9 is -0.5") != std::string::npos,
              "cholesky not positive definite: index and pivot" + tag, s.message);
    auto singular = spd(33, 5, 0.0);  // rank 5
    s = cholesky_factor(singular.data(), 33, 0.0, &info, be);
    rt::check(s.code == "ERR_NOT_POSITIVE_DEFINITE" && info.fail_index >= 5, "cholesky rank-deficient fails" + tag,
              "index " + std::to_string(info.fail_index));
    singular = spd(33, 5, 0.0);
    s = cholesky_factor(singular.data(), 33, 1e-3, &info, be);
    rt::check(s.ok(), "cholesky rank-deficient with ridge 1e-3 succeeds" + tag);
  }
}
