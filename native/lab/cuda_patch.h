// Lab: CUDA twins of build_batch and component_restore (patch.h, patch.cu), callable from plain
// C++. *_host copy to the device, run and copy back (the parity tests use them); *_device take
// device pointers and a stream. Failures return ERR_CUDA with "file:line".
#pragma once
#include "cuda_api.h"

namespace rome::cuda {

Status build_batch_host(float* dst, const float* src, const int32_t* index, const float* patch_src,
                        const int32_t* plan, int64_t B, int64_t S, int64_t T, int64_t D, int64_t R, int64_t P);
Status component_restore_host(float* out, const float* mid, const float* component, const float* clean,
                              const uint8_t* mask, int64_t B, int64_t T, int64_t D, int64_t C);
// patch_map (B, T): -1 = gather from src[index[b]], else the patch_src row.
Status build_batch_device(float* dst, const float* src, const int32_t* index, const float* patch_src,
                          const int32_t* patch_map, int64_t B, int64_t T, int64_t D, void* stream);
Status component_restore_device(float* out, const float* mid, const float* component, const float* clean,
                                const uint8_t* mask, int64_t B, int64_t T, int64_t D, int64_t C, void* stream);

}  // namespace rome::cuda
