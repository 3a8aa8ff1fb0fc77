// rome_native_test: checks every kernel of the addon against a naive reference on random inputs of
// awkward sizes, printing max differences; exits non-zero on any failure. CUDA parity cases run
// when built with CUDA and a device is present (skipped otherwise). Run by `npm run test:native`.
#include <algorithm>
#include <chrono>
#include <cstring>

#include "harness.h"
#include "patch.h"
#include "restore.h"
#include "update.h"
#include "moment.h"
#include "cholesky.h"
#include <array>

using namespace rome;

void test_patch() {
  for (auto [B, S, T, D] : std::vector<std::array<int64_t, 4>>{{1, 1, 1, 1}, {7, 3, 7, 33}, {33, 5, 13, 7}, {64, 10, 33, 768}, {256, 4, 64, 301}}) {  // the last > 16 MiB: streaming stores
    const std::string shape = rt::sz({B, T, D});
    auto src = rt::randn<float>(S * T * D);       // (S, T, D)
    auto clean = rt::randn<float>(2 * T * D);     // (R=2, T, D)
    std::vector<int32_t> index(B);                // (B)
    for (auto& i : index) i = rt::randint(0, int(S - 1));
    // plan: a random subset of distinct (row, pos), each from a random clean row
    std::vector<int32_t> plan;                    // (P, 3)
    for (int64_t b = 0; b < B; b++)
      for (int64_t t = 0; t < T; t++)
        if (rt::randint(0, 3) == 0) plan.insert(plan.end(), {int32_t(b), int32_t(t), int32_t(rt::randint(0, 1))});
    const int64_t P = int64_t(plan.size() / 3);
    std::vector<float> ref(B * T * D), out(B * T * D, -1.f), out2(B * T * D, -1.f);
    for (int64_t b = 0; b < B; b++) std::memcpy(&ref[b * T * D], &src[index[b] * T * D], T * D * 4);
    for (int64_t p = 0; p < P; p++) {
      const int32_t* e = &plan[p * 3];
      std::memcpy(&ref[(e[0] * T + e[1]) * D], &clean[(e[2] * T + e[1]) * D], D * 4);
    }
    Status s = build_batch(out.data(), src.data(), index.data(), clean.data(), plan.data(), B, S, T, D, 2, P);
    rt::check_close("build_batch " + shape + " P=" + std::to_string(P), s.ok() ? rt::maxdiff(out.data(), ref.data(), out.size()) : 1e30, 0);
    s = gather_rows(out2.data(), src.data(), index.data(), B, S, T * D);
    if (s.ok()) s = patch_positions(out2.data(), clean.data(), plan.data(), B, 2, T, D, P);
    rt::check_close("gather_rows + patch_positions " + shape, s.ok() ? rt::maxdiff(out2.data(), ref.data(), out.size()) : 1e30, 0);

    // component restore, clean broadcast (C = 1) and per-row (C = B)
    auto mid = rt::randn<float>(B * T * D), comp = rt::randn<float>(B * T * D);
    std::vector<uint8_t> mask(B * T);
    for (auto& m : mask) m = uint8_t(rt::randint(0, 1));
    for (int64_t C : {int64_t(1), B}) {
      auto cl = rt::randn<float>(C * T * D);
      std::vector<float> o(B * T * D), r(B * T * D);
      for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
          for (int64_t i = 0; i < D; i++) {
            const int64_t k = (b * T + t) * D + i;
            r[k] = mid[k] + (mask[b * T + t] ? cl[((C == 1 ? 0 : b) * T + t) * D + i] : comp[k]);
          }
      s = component_restore(o.data(), mid.data(), comp.data(), cl.data(), mask.data(), B, T, D, C);
      rt::check_close("component_restore " + shape + " C=" + std::to_string(C), s.ok() ? rt::maxdiff(o.data(), r.data(), o.size()) : 1e30, 0);
    }
    // freeze
    std::vector<int32_t> fplan;  // (P, 2)
    for (int64_t p = 0; p < P; p++) fplan.insert(fplan.end(), {plan[p * 3], plan[p * 3 + 1]});
    auto vals = rt::randn<float>(P * D);
    std::vector<float> f = ref, fr = ref;
    for (int64_t p = 0; p < P; p++) std::memcpy(&fr[(fplan[p * 2] * T + fplan[p * 2 + 1]) * D], &vals[p * D], D * 4);
    s = freeze(f.data(), vals.data(), fplan.data(), B, T, D, P);
    rt::check_close("freeze " + shape, s.ok() ? rt::maxdiff(f.data(), fr.data(), f.size()) : 1e30, 0);
  }
  // KV-cache layout (B, H, T, Dh): gather the leading dim
  {
    const int64_t B = 5, S = 3, H = 4, T = 9, Dh = 16, inner = H * T * Dh;
    auto src = rt::randn<float>(S * inner);
    std::vector<int32_t> index = {2, 0, 1, 2, 2};
    std::vector<float> out(B * inner), ref(B * inner);
    for (int64_t b = 0; b < B; b++) std::memcpy(&ref[b * inner], &src[index[b] * inner], inner * 4);
    Status s = gather_rows(out.data(), src.data(), index.data(), B, S, inner);
    rt::check_close("gather_rows kv (5,4,9,16)", s.ok() ? rt::maxdiff(out.data(), ref.data(), out.size()) : 1e30, 0);
  }
  // argument errors
  {
    std::vector<float> a(2 * 3 * 4), b(2 * 3 * 4);
    std::vector<int32_t> bad_index = {0, 2};
    rt::check(gather_rows(a.data(), b.data(), bad_index.data(), 2, 2, 12).code == "ERR_NATIVE_ARGUMENT", "gather_rows rejects index out of range");
    std::vector<int32_t> dup = {0, 1, 0, 0, 1, 0};
    std::vector<int32_t> idx = {0, 1};
    rt::check(build_batch(a.data(), b.data(), idx.data(), b.data(), dup.data(), 2, 2, 3, 4, 2, 2).code == "ERR_NATIVE_ARGUMENT", "build_batch rejects duplicate plan entries");
    std::vector<int32_t> oob = {0, 3, 0};
    rt::check(patch_positions(a.data(), b.data(), oob.data(), 2, 2, 3, 4, 1).code == "ERR_NATIVE_ARGUMENT", "patch_positions rejects position out of range");
  }
}

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
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("\n%d checks, %d failed (%.1f s)\n", rt::checks(), rt::failures(), secs);
  return rt::failures() ? 1 : 0;
}
