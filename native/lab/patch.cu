// CUDA twins of build_batch and component_restore (patch.h): one thread block per (row, position)
// vector, float4 copies when D allows. Parity with the CPU kernels is exact (copies and one add).
#include <vector>

#include "cuda_patch.h"
#include "cuda_util.cuh"

namespace rome::cuda {

__global__ void build_batch_kernel(float* __restrict__ dst,              // (B, T, D)
                                   const float* __restrict__ src,        // (S, T, D)
                                   const int32_t* __restrict__ index,    // (B)
                                   const float* __restrict__ patch_src,  // (R, T, D)
                                   const int32_t* __restrict__ patch_map,  // (B, T): -1 or patch row
                                   int64_t T, int64_t D) {
  const int64_t bt = blockIdx.x, b = bt / T, t = bt % T;
  const int32_t pr = patch_map ? patch_map[bt] : -1;
  const float* s = pr >= 0 ? patch_src + (int64_t(pr) * T + t) * D : src + (int64_t(index[b]) * T + t) * D;
  float* o = dst + bt * D;
  if ((D & 3) == 0) {
    const float4* s4 = reinterpret_cast<const float4*>(s);
    float4* o4 = reinterpret_cast<float4*>(o);
    for (int64_t i = threadIdx.x; i < D / 4; i += blockDim.x) o4[i] = s4[i];
  } else {
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) o[i] = s[i];
  }
}

__global__ void component_restore_kernel(float* __restrict__ out, const float* __restrict__ mid,
                                         const float* __restrict__ component, const float* __restrict__ clean,
                                         const uint8_t* __restrict__ mask, int64_t T, int64_t D, int64_t C) {
  const int64_t bt = blockIdx.x, b = bt / T, t = bt % T;
  const float* c = mask[bt] ? clean + ((C == 1 ? 0 : b) * T + t) * D : component + bt * D;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) out[bt * D + i] = mid[bt * D + i] + c[i];
}

static int threads_for(int64_t D) { return D >= 1024 ? 256 : D >= 128 ? 128 : 32; }

Status build_batch_device(float* dst, const float* src, const int32_t* index, const float* patch_src,
                          const int32_t* patch_map, int64_t B, int64_t T, int64_t D, void* stream) {
  if (B * T == 0) return Status::Ok();
  build_batch_kernel<<<unsigned(B * T), threads_for(D / 4 + 1), 0, cudaStream_t(stream)>>>(dst, src, index, patch_src, patch_map, T, D);
  ROME_CUDA_TRY(cudaGetLastError());
  return Status::Ok();
}

Status component_restore_device(float* out, const float* mid, const float* component, const float* clean,
                                const uint8_t* mask, int64_t B, int64_t T, int64_t D, int64_t C, void* stream) {
  if (B * T == 0) return Status::Ok();
  component_restore_kernel<<<unsigned(B * T), threads_for(D), 0, cudaStream_t(stream)>>>(out, mid, component, clean, mask, T, D, C);
  ROME_CUDA_TRY(cudaGetLastError());
  return Status::Ok();
}

Status build_batch_host(float* dst, const float* src, const int32_t* index, const float* patch_src, const int32_t* plan,
                        int64_t B, int64_t S, int64_t T, int64_t D, int64_t R, int64_t P) {
  std::vector<int32_t> map(size_t(B * T), -1);  // (B, T)
  for (int64_t b = 0; b < B; b++)
    if (index[b] < 0 || index[b] >= S) return Status::Error("ERR_NATIVE_ARGUMENT", "index out of range");
  for (int64_t p = 0; p < P; p++) {
    const int32_t* e = plan + 3 * p;
    if (e[0] < 0 || e[0] >= B || e[1] < 0 || e[1] >= T || e[2] < 0 || e[2] >= R || map[e[0] * T + e[1]] >= 0)
      return Status::Error("ERR_NATIVE_ARGUMENT", "plan entry " + std::to_string(p) + " is out of range or repeated");
    map[e[0] * T + e[1]] = e[2];
  }
  DeviceBuf<float> d_dst, d_src, d_patch;
  DeviceBuf<int32_t> d_index, d_map;
  ROME_CUDA_TRY(d_dst.alloc(B * T * D));
  ROME_CUDA_TRY(d_src.alloc(S * T * D));
  ROME_CUDA_TRY(d_patch.alloc(R * T * D));
  ROME_CUDA_TRY(d_index.alloc(B));
  ROME_CUDA_TRY(d_map.alloc(B * T));
  ROME_CUDA_TRY(cudaMemcpy(d_src.p, src, S * T * D * 4, cudaMemcpyHostToDevice));
  if (R) ROME_CUDA_TRY(cudaMemcpy(d_patch.p, patch_src, R * T * D * 4, cudaMemcpyHostToDevice));
  ROME_CUDA_TRY(cudaMemcpy(d_index.p, index, B * 4, cudaMemcpyHostToDevice));
  ROME_CUDA_TRY(cudaMemcpy(d_map.p, map.data(), B * T * 4, cudaMemcpyHostToDevice));
  Status s = build_batch_device(d_dst.p, d_src.p, d_index.p, d_patch.p, d_map.p, B, T, D, nullptr);
  if (!s.ok()) return s;
  ROME_CUDA_TRY(cudaMemcpy(dst, d_dst.p, B * T * D * 4, cudaMemcpyDeviceToHost));
  return Status::Ok();
}

Status component_restore_host(float* out, const float* mid, const float* component, const float* clean,
                              const uint8_t* mask, int64_t B, int64_t T, int64_t D, int64_t C) {
  const int64_t n = B * T * D;
  DeviceBuf<float> d_out, d_mid, d_comp, d_clean;
  DeviceBuf<uint8_t> d_mask;
  ROME_CUDA_TRY(d_out.alloc(n));
  ROME_CUDA_TRY(d_mid.alloc(n));
  ROME_CUDA_TRY(d_comp.alloc(n));
  ROME_CUDA_TRY(d_clean.alloc(C * T * D));
  ROME_CUDA_TRY(d_mask.alloc(B * T));
  ROME_CUDA_TRY(cudaMemcpy(d_mid.p, mid, n * 4, cudaMemcpyHostToDevice));
  ROME_CUDA_TRY(cudaMemcpy(d_comp.p, component, n * 4, cudaMemcpyHostToDevice));
  ROME_CUDA_TRY(cudaMemcpy(d_clean.p, clean, C * T * D * 4, cudaMemcpyHostToDevice));
  ROME_CUDA_TRY(cudaMemcpy(d_mask.p, mask, B * T, cudaMemcpyHostToDevice));
  Status s = component_restore_device(d_out.p, d_mid.p, d_comp.p, d_clean.p, d_mask.p, B, T, D, C, nullptr);
  if (!s.ok()) return s;
  ROME_CUDA_TRY(cudaMemcpy(out, d_out.p, n * 4, cudaMemcpyDeviceToHost));
  return Status::Ok();
}

}  // namespace rome::cuda
