// Test program, the lab's part: the kernels lib/ does not call (native/lab/), each against a naive
// reference, as they were tested in the addon. Run with the rest by `npm run test:native`.
#include <array>
#include <cstring>

#include "../test/harness.h"
#include "patch.h"

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

