// The finite check and fingerprint sample of a checkpoint's f32 weights, read straight from the
// file: every value's exponent bits are tested (NaN and infinities have all eight set) and every
// `stride`-th value is copied out. Model.load runs it on libuv's pool for each weight onnxruntime
// maps from the file, in place of the JavaScript scan thread (lib/model/scan-worker.mjs).
#pragma once
#include <cstdint>
#include <string>

#include "common.h"

namespace rome {

/** Index of the first of `n` little-endian f32 values (as raw words) that is NaN or infinite, or -1. */
int64_t first_non_finite(const uint32_t* words, int64_t n);

/** What a scan found: the first non-finite value (index -1 when there is none). */
struct ScanFinding {
  int64_t bad_index = -1;
  float bad_value = 0;
};

/**
 * Reads `length` bytes (a multiple of 4) of little-endian f32 values at `offset` in the file at
 * `path`, writes the values at indices 0, stride, 2·stride, … to `sample` (ceil(length / 4 / stride)
 * of them) and reports the first non-finite value; the sample is complete only when there is none.
 * ERR_IO when the file cannot be read, ERR_NATIVE_ARGUMENT for a bad length or stride.
 */
Status scan_f32_file(const std::string& path, int64_t offset, int64_t length, int64_t stride, float* sample,
                     ScanFinding& found);

}  // namespace rome
