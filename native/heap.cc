// See heap.h. glibc serves a request above its mmap threshold (at most 32 MiB) with a mapping of its
// own, faulted page by page; with mmap off (M_MMAP_MAX 0) and trimming off, one large malloc and
// free leaves a free top chunk of the reserved size that later requests split in address order.
// The region is advised MADV_HUGEPAGE (2 MiB faults instead of 512) and a helper thread populates it
// with MADV_POPULATE_WRITE (no access to the contents, so racing the owner's writes is safe) from
// its end downwards until it meets pages the allocating thread has touched.
#include "heap.h"

#if defined(__linux__) && defined(__GLIBC__)
#include <malloc.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

namespace rome {
namespace {

constexpr std::uintptr_t kHuge = std::uintptr_t(2) << 20;
// What glibc's dynamic thresholds reach once a large block has been freed: restored after a
// reservation (any mallopt call fixes the thresholds for the rest of the process).
constexpr int kMmapThreshold = 32 << 20;
constexpr int kTrimThreshold = 64 << 20;

std::mutex mu;
bool active = false;
std::atomic<bool> stop{false};
std::thread helper;

bool resident(char* page) {
  unsigned char v = 0;
  return mincore(page, 4096, &v) == 0 && (v & 1);
}

// Populates [lo, hi) in 2 MiB steps from hi downwards, until asked to stop or a step's first page
// is already resident (the allocating thread got there).
void populate_down(char* lo, char* hi) {
  for (char* at = hi; at > lo && !stop.load(std::memory_order_relaxed);) {
    char* from = at - kHuge < lo ? lo : at - kHuge;
    if (resident(from)) break;
    if (madvise(from, std::size_t(at - from), MADV_POPULATE_WRITE) != 0) break;  // old kernel, or no memory: stop helping
    at = from;
  }
}

}  // namespace

bool heap_reserve_supported() { return true; }

bool heap_reserve_begin(std::size_t bytes) {
  std::lock_guard<std::mutex> lock(mu);
  if (active || bytes < kHuge || syscall(SYS_gettid) != getpid()) return false;
  if (mallopt(M_MMAP_MAX, 0) == 0) return false;
  mallopt(M_TRIM_THRESHOLD, -1);
  void* p = std::malloc(bytes);
  if (!p) {
    mallopt(M_MMAP_MAX, 65536);
    mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
    mallopt(M_TRIM_THRESHOLD, kTrimThreshold);
    return false;
  }
  char* lo = reinterpret_cast<char*>((reinterpret_cast<std::uintptr_t>(p) + kHuge) & ~(kHuge - 1));
  char* hi = reinterpret_cast<char*>((reinterpret_cast<std::uintptr_t>(p) + bytes) & ~(kHuge - 1));
  std::free(p);  // back into the top chunk, which now spans the region
  active = true;
  if (hi > lo) {
    madvise(lo, std::size_t(hi - lo), MADV_HUGEPAGE);  // best effort: without it, 4 KiB faults
    stop.store(false);
    helper = std::thread(populate_down, lo, hi);
  }
  return true;
}

void heap_reserve_end() {
  std::lock_guard<std::mutex> lock(mu);
  if (!active) return;
  stop.store(true);
  if (helper.joinable()) helper.join();
  mallopt(M_MMAP_MAX, 65536);
  mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
  mallopt(M_TRIM_THRESHOLD, kTrimThreshold);
  malloc_trim(0);  // the part of the region nobody allocated, populated or not
  active = false;
}

void heap_trim() { malloc_trim(0); }

}  // namespace rome

#else

namespace rome {
bool heap_reserve_supported() { return false; }
bool heap_reserve_begin(std::size_t) { return false; }
void heap_reserve_end() {}
void heap_trim() {}
}  // namespace rome

#endif
