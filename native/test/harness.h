// Minimal harness of the C++ test program: seeded random inputs, max differences, a pass/fail
// tally. Every check prints its max difference and tolerance.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace rt {

inline int& failures() { static int f = 0; return f; }
inline int& checks() { static int c = 0; return c; }

inline std::mt19937_64& rng() { static std::mt19937_64 g(12345); return g; }
template <class T>
std::vector<T> randn(size_t n, double scale = 1.0) {
  std::normal_distribution<double> d(0.0, scale);
  std::vector<T> v(n);
  for (auto& x : v) x = T(d(rng()));
  return v;
}
inline int randint(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng()); }

template <class A, class B>
double maxdiff(const A* a, const B* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    const double d = std::fabs(double(a[i]) - double(b[i]));
    if (!(d <= m)) m = std::isnan(d) ? INFINITY : d;
  }
  return m;
}

inline void check(bool ok, const std::string& name, const std::string& detail = "") {
  checks()++;
  if (!ok) failures()++;
  std::printf("%s %-58s %s\n", ok ? "ok  " : "FAIL", name.c_str(), detail.c_str());
}

inline void check_close(const std::string& name, double diff, double tol) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "maxdiff %.3g (tol %.1g)", diff, tol);
  check(diff <= tol, name, buf);
}

inline std::string sz(std::initializer_list<int64_t> dims) {
  std::string s = "(";
  for (auto d : dims) s += (s.size() > 1 ? "," : "") + std::to_string(d);
  return s + ")";
}

}  // namespace rt

void test_restore();
void test_patch();
void test_update();
void test_moment();
void test_cholesky();
void test_cuda();
void test_scan();
void test_heap();
