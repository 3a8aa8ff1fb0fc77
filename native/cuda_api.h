// CUDA twin of the second-moment kernel (moment.cu), callable from
// plain C++ (no CUDA headers needed). *_host functions take host pointers, copy to the device, run,
// and copy back: the parity tests use them. *_device functions take device pointers and a stream.
// Every CUDA failure returns ERR_CUDA with "file:line" in the message; nothing exits the process.
// Cholesky has no CUDA path in builds without cuSOLVER (the toolkit here has none): it is CPU-only.
#pragma once
#include <string>

#include "common.h"

namespace rome::cuda {

int device_count();          // 0 without a device or driver
std::string device_error();  // why device_count() is 0
std::string device_name(int device);

Status moment_accumulate_host(double* acc, const float* keys, int64_t rows, int64_t d);

// Device-pointer form.
Status moment_accumulate_device(double* acc, const float* keys, int64_t rows, int64_t d, void* stream);

}  // namespace rome::cuda
