// rome_native_test: checks every kernel of the addon against a naive reference on random inputs of
// awkward sizes, printing max differences; exits non-zero on any failure. CUDA parity cases run
// when built with CUDA and a device is present (skipped otherwise). Run by `npm run test:native`.
#include <algorithm>
#include <chrono>
#include <cstring>

#include "harness.h"
#include "restore.h"
#include "update.h"
#include "update_undo.h"
#include "moment.h"
#include "cholesky.h"
#include <array>

using namespace rome;

// apply_plan against a naive loop: random runs of copies and sums, the destination among the sources.
void test_restore() {
  for (int trial = 0; trial < 300; trial++) {
    const int64_t W = rt::randint(1, 70), dv = rt::randint(1, 40);
    std::vector<std::vector<float>> bufs;
    const int ns = rt::randint(1, 4);
    for (int i = 0; i < ns; i++) bufs.push_back(rt::randn<float>(W * rt::randint(1, 30)));
    std::vector<float> dst = rt::randn<float>(W * dv), ref = dst;
    const bool alias = rt::randint(0, 1) == 1;  // source ns is dst itself
    std::vector<PlanSource> src, rsrc;
    for (auto& b : bufs) src.push_back({b.data(), int64_t(b.size())});
    rsrc = src;
    if (alias) {
      src.push_back({dst.data(), int64_t(dst.size())});
      rsrc.push_back({ref.data(), int64_t(ref.size())});
    }
    std::vector<int32_t> plan;
    const int P = rt::randint(0, 12);
    for (int p = 0; p < P; p++) {
      const int32_t a = rt::randint(0, int(src.size()) - 1), b = rt::randint(0, 1) ? rt::randint(0, int(src.size()) - 1) : -1;
      const auto len = [&](int32_t s) { return src[s].length / W; };
      const int64_t n = std::min<int64_t>({int64_t(rt::randint(1, 5)), dv, len(a), b >= 0 ? len(b) : dv});
      plan.insert(plan.end(), {int32_t(rt::randint(0, int(dv - n))), int32_t(n), a, int32_t(rt::randint(0, int(len(a) - n))), b,
                               b >= 0 ? int32_t(rt::randint(0, int(len(b) - n))) : 0});
    }
    for (int p = 0; p < P; p++) {  // naive: memmove semantics for copies, element order for sums
      const int32_t* e = &plan[p * kPlanFields];
      const float* x = rsrc[e[2]].data + int64_t(e[3]) * W;
      if (e[4] < 0) {
        std::vector<float> tmp(x, x + e[1] * W);
        std::copy(tmp.begin(), tmp.end(), ref.begin() + int64_t(e[0]) * W);
      } else {
        const float* y = rsrc[e[4]].data + int64_t(e[5]) * W;
        for (int64_t i = 0; i < e[1] * W; i++) ref[e[0] * W + i] = x[i] + y[i];
      }
    }
    Status s = apply_plan(dst.data(), int64_t(dst.size()), src.data(), int64_t(src.size()), plan.data(), P, W);
    if (!s.ok() || rt::maxdiff(dst.data(), ref.data(), dst.size()) != 0) {
      rt::check(false, "apply_plan trial " + std::to_string(trial), s.message);
      return;
    }
  }
  rt::check(true, "apply_plan: 300 random plans equal the naive loop bit for bit");
  std::vector<float> d(8, 3.f), x(8);
  PlanSource one{x.data(), 8};
  const std::vector<std::pair<std::vector<int32_t>, std::string>> bad = {
      {{1, 2, 0, 0, -1, 0}, "writes outside dst"},   {{0, 1, 1, 0, -1, 0}, "names source 1 of 1"},
      {{0, 1, 0, 2, -1, 0}, "reads outside source 0"}, {{0, 1, 0, 0, 0, 2}, "reads outside source 0"},
      {{0, -1, 0, 0, -1, 0}, "writes outside dst"},  {{2147483647, 2147483647, 0, 0, -1, 0}, "writes outside dst"}};
  for (auto& [entry, what] : bad) {
    std::vector<int32_t> plan = {0, 1, 0, 0, -1, 0};
    plan.insert(plan.end(), entry.begin(), entry.end());
    Status s = apply_plan(d.data(), 8, &one, 1, plan.data(), 2, 4);
    rt::check(s.code == "ERR_NATIVE_ARGUMENT" && s.message == "applyPlan: plan entry 1 " + what && d[0] == 3.f,
              "apply_plan refuses entry (" + what + "), writes nothing");
  }
}

void test_update() {
  for (auto [rows, cols, r] : std::vector<std::array<int64_t, 3>>{{1, 1, 1}, {7, 33, 1}, {33, 7, 3}, {3072, 768, 1}, {1000, 129, 4}}) {
    const std::string shape = rt::sz({rows, cols}) + " r=" + std::to_string(r);
    auto w = rt::randn<float>(rows * cols), u = rt::randn<float>(rows * r), v = rt::randn<float>(cols * r);
    for (int64_t i = 0; i < rows; i += 3)
      for (int64_t k = 0; k < r; k++) u[i * r + k] = 0;  // some untouched rows
    const std::vector<float> orig = w;
    std::vector<float> ref(rows * cols);
    for (int64_t i = 0; i < rows; i++)
      for (int64_t j = 0; j < cols; j++) {
        double s = 0;
        for (int64_t k = 0; k < r; k++) s += double(u[i * r + k]) * v[j * r + k];
        ref[i * cols + j] = float(double(w[i * cols + j]) + s);
      }
    const int64_t nt = update_touched_rows(u.data(), rows, r, nullptr);
    std::vector<int32_t> touched(nt);
    update_touched_rows(u.data(), rows, r, touched.data());
    std::vector<float> backup(nt * cols);
    Status s = update_apply(w.data(), u.data(), v.data(), rows, cols, r, touched.data(), nt, backup.data());
    rt::check_close("update_apply " + shape, s.ok() ? rt::maxdiff(w.data(), ref.data(), w.size()) : 1e30, 0);
    s = update_undo(w.data(), rows, cols, touched.data(), nt, backup.data());
    rt::check(s.ok() && std::memcmp(w.data(), orig.data(), w.size() * 4) == 0, "update_undo bit-exact " + shape);
  }
}

int main(int argc, char** argv) {
  (void)argc;
  (void)argv;
  set_threads(0);
  std::printf("rome_native_test: threads %d, openmp %d, blas %d, lapack %s\n", get_threads(), int(have_openmp()),
              int(have_blas()), have_lapack() ? "yes" : "no");
  const auto t0 = std::chrono::steady_clock::now();
  test_restore();
  test_patch();
  test_update();
  test_moment();
  test_cholesky();
  test_cuda();
  test_scan();
  test_heap();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("\n%d checks, %d failed (%.1f s)\n", rt::checks(), rt::failures(), secs);
  return rt::failures() ? 1 : 0;
}
