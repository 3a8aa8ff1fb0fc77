// CUDA twin of moment_accumulate (moment.h): C (d, d) upper += Kᵀ K. One thread block owns one
// 64x64 tile of the upper triangle (no atomics); 256 threads each hold a 4x4 micro-tile. Products
// are summed in float32 over 256-row slices (like the CPU kernel) and added into float64 registers.
#include "cuda_api.h"
#include "cuda_util.cuh"

namespace rome::cuda {

constexpr int TILE = 64, KS = 16, SLICE = 256;

__global__ void __launch_bounds__(256) moment_kernel(double* __restrict__ acc,       // (d, d) upper
                                                     const float* __restrict__ keys,  // (rows, d)
                                                     int64_t rows, int64_t d, int nt) {
  // linear block id -> (ti, tj) with tj >= ti
  int ti = 0, rem = blockIdx.x;
  while (rem >= nt - ti) { rem -= nt - ti; ti++; }
  const int tj = ti + rem;
  const int64_t i0 = int64_t(ti) * TILE, j0 = int64_t(tj) * TILE;
  __shared__ float a_s[KS][TILE];  // (KS, TILE): keys[r, i0 + i]
  __shared__ float b_s[KS][TILE];  // (KS, TILE): keys[r, j0 + j]
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  double c[4][4] = {};
  float f[4][4] = {};
  int in_slice = 0;
  for (int64_t r0 = 0; r0 < rows; r0 += KS) {
    for (int e = threadIdx.x; e < KS * TILE; e += 256) {
      const int k = e / TILE, x = e % TILE;
      const int64_t r = r0 + k;
      a_s[k][x] = (r < rows && i0 + x < d) ? keys[r * d + i0 + x] : 0.f;
      b_s[k][x] = (r < rows && j0 + x < d) ? keys[r * d + j0 + x] : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < KS; k++) {
      float a[4], b[4];
#pragma unroll
      for (int m = 0; m < 4; m++) a[m] = a_s[k][ty * 4 + m], b[m] = b_s[k][tx * 4 + m];
#pragma unroll
      for (int m = 0; m < 4; m++)
#pragma unroll
        for (int n = 0; n < 4; n++) f[m][n] = fmaf(a[m], b[n], f[m][n]);
    }
    __syncthreads();
    in_slice += KS;
    if (in_slice >= SLICE) {
#pragma unroll
      for (int m = 0; m < 4; m++)
#pragma unroll
        for (int n = 0; n < 4; n++) c[m][n] += double(f[m][n]), f[m][n] = 0.f;
      in_slice = 0;
    }
  }
  for (int m = 0; m < 4; m++)
    for (int n = 0; n < 4; n++) {
      const int64_t i = i0 + ty * 4 + m, j = j0 + tx * 4 + n;
      if (i < d && j < d && j >= i) acc[i * d + j] += c[m][n] + double(f[m][n]);
    }
}

Status moment_accumulate_device(double* acc, const float* keys, int64_t rows, int64_t d, void* stream) {
  if (rows == 0 || d == 0) return Status::Ok();
  const int nt = int((d + TILE - 1) / TILE);
  moment_kernel<<<unsigned(int64_t(nt) * (nt + 1) / 2), 256, 0, cudaStream_t(stream)>>>(acc, keys, rows, d, nt);
  ROME_CUDA_TRY(cudaGetLastError());
  return Status::Ok();
}

Status moment_accumulate_host(double* acc, const float* keys, int64_t rows, int64_t d) {
  DeviceBuf<double> d_acc;
  DeviceBuf<float> d_keys;
  ROME_CUDA_TRY(d_acc.alloc(size_t(d) * size_t(d)));
  ROME_CUDA_TRY(d_keys.alloc(size_t(rows) * size_t(d)));
  ROME_CUDA_TRY(cudaMemcpy(d_acc.p, acc, size_t(d) * d * 8, cudaMemcpyHostToDevice));
  ROME_CUDA_TRY(cudaMemcpy(d_keys.p, keys, size_t(rows) * d * 4, cudaMemcpyHostToDevice));
  Status s = moment_accumulate_device(d_acc.p, d_keys.p, rows, d, nullptr);
  if (!s.ok()) return s;
  ROME_CUDA_TRY(cudaDeviceSynchronize());
  ROME_CUDA_TRY(cudaMemcpy(acc, d_acc.p, size_t(d) * d * 8, cudaMemcpyDeviceToHost));
  return Status::Ok();
}

}  // namespace rome::cuda
