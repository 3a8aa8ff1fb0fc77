// Shared plumbing of the addon's kernels: the status every kernel returns (kernels never throw and
// never touch JavaScript, so the same code runs under N-API, in the C++ test program and in
// sanitizer builds), thread control, and the OpenMP size thresholds.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace rome {

/** What a kernel reports. `code` is a RomeError code ("" on success). */
struct Status {
  std::string code;     // "", "ERR_NATIVE_ARGUMENT", "ERR_NOT_POSITIVE_DEFINITE", "ERR_CUDA"
  std::string message;  // full sentence, shown to the user
  std::vector<std::pair<std::string, double>> details;  // extra numeric properties of the error
  bool ok() const { return code.empty(); }
  static Status Ok() { return {}; }
  static Status Error(const char* code, std::string message) { return {code, std::move(message), {}}; }
};

/** Threads used by OpenMP loops (and OpenBLAS when built with it). n <= 0 means "all cores".
 *  Every parallel region passes num_threads(get_threads()) explicitly, because omp_set_num_threads
 *  only affects the calling thread and kernels also run on libuv's worker threads. */
void set_threads(int n);
int get_threads();
bool have_openmp();

// OpenMP loops run in parallel only above these sizes (an idle fork/join costs ~7 µs).
constexpr size_t kParallelBytes = size_t(1) << 24;   // copies: 16 MiB (smaller ones are faster on one thread, measured)
constexpr size_t kParallelFlops = size_t(1) << 20;   // arithmetic: 1 MFLOP

}  // namespace rome

#ifdef _OPENMP
#include <omp.h>
#define ROME_OMP_THREADS() omp_get_max_threads()
#define ROME_OMP_ID() omp_get_thread_num()
#else
#define ROME_OMP_THREADS() 1
#define ROME_OMP_ID() 0
#endif
