// CUDA device queries and error formatting shared by the .cu twins.
#include <cstdio>

#include "cuda_api.h"
#include "cuda_util.cuh"

namespace rome::cuda {

Status error_status(cudaError_t err, const char* expr, const char* file, int line) {
  char buf[512];
  const char* base = file;
  for (const char* p = file; *p; p++)
    if (*p == '/' || *p == '\\') base = p + 1;
  std::snprintf(buf, sizeof buf, "CUDA error %s (%s) at %s:%d in %s", cudaGetErrorName(err), cudaGetErrorString(err),
                base, line, expr);
  cudaGetLastError();  // clear the sticky-free error state
  return Status::Error("ERR_CUDA", buf);
}

static cudaError_t g_count_err = cudaSuccess;

int device_count() {
  int n = 0;
  g_count_err = cudaGetDeviceCount(&n);
  if (g_count_err != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

std::string device_error() {
  return g_count_err == cudaSuccess ? "no devices" : std::string(cudaGetErrorName(g_count_err)) + ": " + cudaGetErrorString(g_count_err);
}

std::string device_name(int device) {
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) return "unknown";
  return prop.name;
}

}  // namespace rome::cuda
