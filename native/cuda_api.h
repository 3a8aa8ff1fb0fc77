// CUDA twins of the patch/gather and second-moment kernels (patch.cu, moment.cu), callable from
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

Status build_batch_host(float* dst, const float* src, const int32_t* index, const float* patch_src,
                        const int32_t* plan, int64_t B, int64_t S, int64_t T, int64_t D, int64_t R, int64_t P);
Status component_restore_host(float* out, const float* mid, const float* component, const float* clean,
                              const uint8_t* mask, int64_t B, int64_t T, int64_t D, int64_t C);
Status moment_accumulate_host(double* acc, const float* keys, int64_t rows, int64_t d);

// Device-pointer forms. patch_map (B, T): -1 = gather from src[index[b]], else the patch_src row.
Status build_batch_device(float* dst, const float* src, const int32_t* index, const float* patch_src,
                          const int32_t* patch_map, int64_t B, int64_t T, int64_t D, void* stream);
Status component_restore_device(float* out, const float* mid, const float* component, const float* clean,
                                const uint8_t* mask, int64_t B, int64_t T, int64_t D, int64_t C, void* stream);
Status moment_accumulate_device(double* acc, const float* keys, int64_t rows, int64_t d, void* stream);

}  // namespace rome::cuda
