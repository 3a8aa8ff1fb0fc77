// Lab: the first restoration-patching kernels, kept with their tests and CUDA twin (lab/patch.cu).
// lib/ does not call them: the sweep's between-segment work is one plan kernel (restore.h).
// A layer's batch input is built in one pass (rows gathered by sample from the corrupted states,
// chosen (row, position) vectors overwritten with restored ones); component restore and freeze
// serve MLP/attention restoration and the severed-path experiment. CPU here, CUDA twin in patch.cu.
#pragma once
#include "common.h"

namespace rome {

/** dst (B, inner) row b = src (S, inner) row index[b]. Any row-major tensor whose leading dim is
 *  gathered: states (B, T, D) have inner = T*D, KV caches (B, H, T, Dh) have inner = H*T*Dh. */
Status gather_rows(float* dst,            // (B, inner)
                   const float* src,      // (S, inner)
                   const int32_t* index,  // (B) values in [0, S)
                   int64_t B, int64_t S, int64_t inner);

/** For each plan entry p: dst[plan[p,0], plan[p,1], :] = src[plan[p,2], plan[p,1], :].
 *  Entries must name distinct (dstRow, pos) pairs. */
Status patch_positions(float* dst,           // (B, T, D)
                       const float* src,     // (R, T, D)
                       const int32_t* plan,  // (P, 3): dstRow, pos, srcRow
                       int64_t B, int64_t R, int64_t T, int64_t D, int64_t P);

/** gather_rows then patch_positions, fused into one pass over dst: every dst vector is written
 *  exactly once, from the gathered row or from the patch source. */
Status build_batch(float* dst,              // (B, T, D)
                   const float* src,        // (S, T, D)   e.g. corrupted states, by sample
                   const int32_t* index,    // (B)         sample of each batch row
                   const float* patch_src,  // (R, T, D)   e.g. the clean run (R = 1); may be null if P = 0
                   const int32_t* plan,     // (P, 3):     dstRow, pos, patchRow
                   int64_t B, int64_t S, int64_t T, int64_t D, int64_t R, int64_t P);

/** out = mid + where(mask, clean, component). clean has 1 row (broadcast) or B rows. */
Status component_restore(float* out,              // (B, T, D)
                         const float* mid,        // (B, T, D)
                         const float* component,  // (B, T, D)
                         const float* clean,      // (C, T, D), C = 1 or B
                         const uint8_t* mask,     // (B, T) nonzero = restore
                         int64_t B, int64_t T, int64_t D, int64_t C);

/** For each plan entry p: dst[plan[p,0], plan[p,1], :] = values[p, :] (recorded values). */
Status freeze(float* dst,            // (B, T, D)
              const float* values,   // (P, D)
              const int32_t* plan,   // (P, 2): row, pos
              int64_t B, int64_t T, int64_t D, int64_t P);

}  // namespace rome
