// Thread control shared by all CPU kernels (OpenMP and, when linked, OpenBLAS).
#include "common.h"

#include <atomic>
#include <thread>

#ifdef ROME_HAVE_OPENBLAS
extern "C" void openblas_set_num_threads(int);
#endif

namespace rome {

static std::atomic<int> g_threads{0};

void set_threads(int n) {
  if (n <= 0) n = int(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  g_threads = n;
#ifdef ROME_HAVE_OPENBLAS
  openblas_set_num_threads(n);
#endif
}

int get_threads() {
  int n = g_threads.load();
  if (n > 0) return n;
  n = int(std::thread::hardware_concurrency());
  return n > 0 ? n : 1;
}

bool have_openmp() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

}  // namespace rome
