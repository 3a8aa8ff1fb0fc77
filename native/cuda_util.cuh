// CUDA error handling: ROME_CUDA_TRY(expr) returns ERR_CUDA "CUDA error <name> (<text>) at file:line"
// from the enclosing function, which must return rome::Status.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "common.h"

namespace rome::cuda {
Status error_status(cudaError_t err, const char* expr, const char* file, int line);

// Device buffer freed on scope exit.
template <class T>
struct DeviceBuf {
  T* p = nullptr;
  ~DeviceBuf() { if (p) cudaFree(p); }
  cudaError_t alloc(size_t n) { return cudaMalloc(reinterpret_cast<void**>(&p), n * sizeof(T) + 1); }
};
}  // namespace rome::cuda

#define ROME_CUDA_TRY(expr)                                                                   \
  do {                                                                                        \
    cudaError_t rome_err_ = (expr);                                                           \
    if (rome_err_ != cudaSuccess) return ::rome::cuda::error_status(rome_err_, #expr, __FILE__, __LINE__); \
  } while (0)
