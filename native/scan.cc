// See scan.h. The file is read in 1 MiB pieces (they stay in the core's cache between the read and
// the check) into one buffer per thread; the check is a branch-free OR over blocks that the
// compiler vectorises, and a block with a hit is searched again value by value.
#include "scan.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace rome {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "scan.cc reads little-endian f32 words directly");

namespace {

constexpr uint32_t kExponent = 0x7f800000u;
constexpr int64_t kBlock = 1024;                  // values per vectorised test
constexpr int64_t kPiece = int64_t(1) << 20;      // bytes read at a time (a multiple of 4 * kBlock)

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

int64_t first_non_finite(const uint32_t* words, int64_t n) {
  for (int64_t at = 0; at < n; at += kBlock) {
    const int64_t end = at + kBlock < n ? at + kBlock : n;
    uint32_t any = 0;
    for (int64_t i = at; i < end; i++) any |= uint32_t((words[i] & kExponent) == kExponent);
    if (any)
      for (int64_t i = at; i < end; i++)
        if ((words[i] & kExponent) == kExponent) return i;
  }
  return -1;
}

Status scan_f32_file(const std::string& path, int64_t offset, int64_t length, int64_t stride, float* sample,
                     ScanFinding& found) {
  found = ScanFinding{};
  if (offset < 0 || length < 0 || length % 4 != 0 || stride < 1)
    return Status::Error("ERR_NATIVE_ARGUMENT", "scanF32: offset and length must be >= 0, length a multiple of 4, stride >= 1");
  Fd f{open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) return Status::Error("ERR_IO", "cannot open " + path + ": " + std::strerror(errno));
  thread_local std::unique_ptr<uint32_t[]> buffer(new uint32_t[kPiece / 4]);  // (kPiece / 4) words
  for (int64_t at = 0; at < length;) {
    const int64_t bytes = length - at < kPiece ? length - at : kPiece;
    for (int64_t done = 0; done < bytes;) {
      const ssize_t got = pread(f.fd, reinterpret_cast<char*>(buffer.get()) + done, size_t(bytes - done), off_t(offset + at + done));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return Status::Error("ERR_IO", "reading " + path + " failed: " + std::strerror(errno));
      if (got == 0) return Status::Error("ERR_IO", path + ": unexpected end of file");
      done += got;
    }
    const int64_t first = at / 4, count = bytes / 4;
    const int64_t bad = first_non_finite(buffer.get(), count);
    if (bad >= 0) {
      found.bad_index = first + bad;
      std::memcpy(&found.bad_value, &buffer[bad], 4);
      return Status::Ok();
    }
    for (int64_t i = (first + stride - 1) / stride * stride; i < first + count; i += stride)
      std::memcpy(&sample[i / stride], &buffer[i - first], 4);
    at += bytes;
  }
  return Status::Ok();
}

}  // namespace rome
