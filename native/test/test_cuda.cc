// Test program part three: CUDA parity (GPU kernel vs CPU twin). Compiled with CUDA builds;
// skipped at runtime when no device is present, and a no-op in CPU-only builds.
#include "harness.h"

#ifndef ROME_HAVE_CUDA
void test_cuda() { std::printf("skip CUDA parity: built without CUDA\n"); }
#else
#include <array>
#include <chrono>
#include <cstring>

#include "cuda_api.h"
#include "moment.h"
#include "patch.h"
#include "cuda_patch.h"

using namespace rome;

void test_cuda() {
  const int devices = cuda::device_count();
  if (devices <= 0) {
    std::printf("skip CUDA parity: no CUDA device (%s)\n", cuda::device_error().c_str());
    return;
  }
  std::printf("CUDA parity on %s\n", cuda::device_name(0).c_str());
  for (auto [B, S, T, D] : std::vector<std::array<int64_t, 4>>{{1, 1, 1, 1}, {7, 3, 7, 33}, {64, 10, 33, 768}}) {
    auto src = rt::randn<float>(S * T * D), clean = rt::randn<float>(T * D);
    std::vector<int32_t> index(B), plan;
    for (auto& i : index) i = rt::randint(0, int(S - 1));
    for (int64_t b = 0; b < B; b++) plan.insert(plan.end(), {int32_t(b), int32_t(rt::randint(0, int(T - 1))), 0});
    const int64_t P = B;
    std::vector<float> cpu(B * T * D), gpu(B * T * D);
    build_batch(cpu.data(), src.data(), index.data(), clean.data(), plan.data(), B, S, T, D, 1, P);
    Status s = cuda::build_batch_host(gpu.data(), src.data(), index.data(), clean.data(), plan.data(), B, S, T, D, 1, P);
    rt::check_close("cuda build_batch " + rt::sz({B, T, D}), s.ok() ? rt::maxdiff(gpu.data(), cpu.data(), cpu.size()) : 1e30, 0);
    auto mid = rt::randn<float>(B * T * D), comp = rt::randn<float>(B * T * D);
    std::vector<uint8_t> mask(B * T);
    for (auto& m : mask) m = uint8_t(rt::randint(0, 1));
    component_restore(cpu.data(), mid.data(), comp.data(), clean.data(), mask.data(), B, T, D, 1);
    s = cuda::component_restore_host(gpu.data(), mid.data(), comp.data(), clean.data(), mask.data(), B, T, D, 1);
    rt::check_close("cuda component_restore " + rt::sz({B, T, D}), s.ok() ? rt::maxdiff(gpu.data(), cpu.data(), cpu.size()) : 1e30, 0);
  }
  for (auto [rows, d] : std::vector<std::array<int64_t, 2>>{{1, 1}, {33, 7}, {300, 130}, {8192, 3072}}) {
    auto k = rt::randn<float>(rows * d);
    std::vector<double> cpu(d * d, 0.0), gpu(d * d, 0.0);
    const auto t0 = std::chrono::steady_clock::now();
    moment_accumulate(cpu.data(), k.data(), rows, d);
    const auto t1 = std::chrono::steady_clock::now();
    Status s = cuda::moment_accumulate_host(gpu.data(), k.data(), rows, d);
    const auto t2 = std::chrono::steady_clock::now();
    double m = 0;
    for (int64_t i = 0; i < d; i++) m = std::max(m, rt::maxdiff(&gpu[i * d + i], &cpu[i * d + i], size_t(d - i)));
    char buf[96];
    std::snprintf(buf, sizeof buf, " cpu %.3f s, gpu %.3f s (with copies)", std::chrono::duration<double>(t1 - t0).count(),
                  std::chrono::duration<double>(t2 - t1).count());
    rt::check_close("cuda moment_accumulate " + rt::sz({rows, d}) + buf, s.ok() ? m : 1e30, 2e-6 * double(rows) + 1e-6);
  }
  // errors throw (return a status) with file:line instead of exiting
  Status s = cuda::moment_accumulate_host(nullptr, nullptr, 1, int64_t(1) << 20);
  rt::check(s.code == "ERR_CUDA" && s.message.find(".cu:") != std::string::npos, "cuda error carries file:line", s.message);
}
#endif
