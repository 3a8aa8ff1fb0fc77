// Checks of the load-time kernels: the weight scan (scan.h) against a naive loop over a temporary
// file, and the heap reservation (heap.h) serving allocations from one populated region.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "harness.h"
#include "heap.h"
#include "scan.h"

using namespace rome;

namespace {

std::string write_temp(const std::vector<float>& values, int64_t pad) {
  char name[] = "/tmp/rome_scan_XXXXXX";
  const int fd = mkstemp(name);
  std::vector<char> bytes(size_t(pad), 'x');
  bytes.resize(size_t(pad) + values.size() * 4);
  if (!values.empty()) std::memcpy(bytes.data() + pad, values.data(), values.size() * 4);
  const bool ok = fd >= 0 && write(fd, bytes.data(), bytes.size()) == ssize_t(bytes.size());
  if (fd >= 0) close(fd);
  return ok ? name : "";
}

}  // namespace

void test_scan() {
  // first_non_finite: a single NaN, +inf or -inf anywhere, and the largest finite values around it
  for (int trial = 0; trial < 200; trial++) {
    const int64_t n = rt::randint(0, 5000);
    std::vector<float> v = rt::randn<float>(n);
    for (int64_t i = 0; i < n; i += 7) v[i] = (i % 2 ? 1 : -1) * std::numeric_limits<float>::max();
    int64_t expect = -1;
    if (n > 0 && rt::randint(0, 2) > 0) {
      expect = rt::randint(0, int(n - 1));
      const float specials[] = {std::nanf(""), INFINITY, -INFINITY};
      v[expect] = specials[rt::randint(0, 2)];
      if (expect + 1 < n) v[expect + 1] = std::nanf("");  // only the first counts
    }
    const int64_t got = first_non_finite(reinterpret_cast<const uint32_t*>(v.data()), n);
    if (got != expect) {
      rt::check(false, "first_non_finite trial " + std::to_string(trial), std::to_string(got) + " != " + std::to_string(expect));
      return;
    }
  }
  rt::check(true, "first_non_finite: 200 random arrays, first NaN/inf found (largest finite values pass)");

  // scan_f32_file: sample and finding against a naive loop, sizes around the 1 MiB pieces
  for (int64_t n : {int64_t(0), int64_t(1), int64_t(4097), int64_t(262144), int64_t(262145), int64_t(700001)}) {
    for (int64_t stride : {int64_t(1), int64_t(3), std::max<int64_t>(1, n / 4096)}) {
      std::vector<float> v = rt::randn<float>(n);
      const int64_t pad = 13;  // unaligned offset in the file
      const std::string path = write_temp(v, pad);
      std::vector<float> sample(size_t((n + stride - 1) / stride), -1.f);
      ScanFinding found;
      Status s = scan_f32_file(path, pad, n * 4, stride, sample.data(), found);
      bool same = s.ok() && found.bad_index == -1;
      for (int64_t i = 0, j = 0; same && i < n; i += stride, j++) same = std::memcmp(&sample[j], &v[i], 4) == 0;
      rt::check(same, "scan_f32_file n=" + std::to_string(n) + " stride=" + std::to_string(stride) + ": sample bit-exact", s.message);
      if (n > 0) {
        const int64_t at = n - 1 - rt::randint(0, int(std::min<int64_t>(n - 1, 300000)));
        v[at] = -INFINITY;
        unlink(path.c_str());
        const std::string bad = write_temp(v, pad);
        s = scan_f32_file(bad, pad, n * 4, stride, sample.data(), found);
        rt::check(s.ok() && found.bad_index == at && std::isinf(found.bad_value) && found.bad_value < 0,
                  "scan_f32_file n=" + std::to_string(n) + " stride=" + std::to_string(stride) + ": -inf at " + std::to_string(at) + " reported",
                  std::to_string(found.bad_index));
        unlink(bad.c_str());
      } else {
        unlink(path.c_str());
      }
    }
  }
  ScanFinding found;
  float one = 0;
  Status s = scan_f32_file("/nonexistent/rome", 0, 4, 1, &one, found);
  rt::check(s.code == "ERR_IO" && s.message.find("/nonexistent/rome") != std::string::npos, "scan_f32_file: a missing file is ERR_IO naming it", s.message);
  const std::string path = write_temp({1.f, 2.f}, 0);
  s = scan_f32_file(path, 4, 8, 1, &one, found);
  rt::check(s.code == "ERR_IO" && s.message.find("end of file") != std::string::npos, "scan_f32_file: reading past the end is ERR_IO", s.message);
  s = scan_f32_file(path, 0, 6, 1, &one, found);
  rt::check(s.code == "ERR_NATIVE_ARGUMENT", "scan_f32_file: a length not a multiple of 4 is refused", s.message);
  unlink(path.c_str());
}

void test_heap() {
  if (!heap_reserve_supported()) {
    std::printf("  skip  heap reservation (not Linux/glibc)\n");
    return;
  }
  // The main thread reserves 64 MiB; allocations of 8 MiB each then fall inside the region, in order.
  const std::size_t region = std::size_t(64) << 20, piece = std::size_t(8) << 20;
  char* before = static_cast<char*>(std::malloc(64));
  const bool began = heap_reserve_begin(region);
  if (!began) {  // a sanitizer's allocator refuses mallopt
    std::printf("  skip  heap reservation (this allocator refuses mallopt)\n");
    std::free(before);
    return;
  }
  std::vector<char*> got;
  for (int i = 0; i < 6; i++) {
    got.push_back(static_cast<char*>(std::malloc(piece)));
    std::memset(got.back(), i + 1, piece);
  }
  bool ordered = true;
  for (std::size_t i = 1; ordered && i < got.size(); i++) ordered = got[i] > got[i - 1] && std::size_t(got[i] - got[0]) < region;
  rt::check(ordered, "heap reservation: 8 MiB allocations come from one region in address order");
  rt::check(!heap_reserve_begin(region), "heap reservation: a second one while the first is active is refused");
  heap_reserve_end();
  bool intact = true;
  for (std::size_t i = 0; i < got.size(); i++)
    for (std::size_t j = 0; intact && j < piece; j += 4093) intact = got[i][j] == char(i + 1);
  rt::check(intact, "heap reservation: the helper's population left the owners' bytes as written");
  for (char* p : got) std::free(p);
  std::free(before);
  heap_trim();
  rt::check(heap_reserve_begin(region), "heap reservation: a new one after the end");
  heap_reserve_end();
}
