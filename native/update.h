// Low-rank weight updates for edits: W += U Vᵀ in place, and an exact undo. Scheme: apply first
// copies the original bits of every touched row (rows i with some U[i, k] != 0) into a backup;
// undo writes them back, so apply-then-undo is bit-identical to before whatever the rounding.
// Undo must follow the LIFO order of applies on the same rows (an older backup restores the rows
// as they were before *its* apply). Cost: 4 bytes × touched rows × cols.
#pragma once
#include "common.h"

namespace rome {

/** Number of rows of U (rows, r) with a nonzero entry; writes their indices to touched (rows) when
 *  not null, ascending. */
int64_t update_touched_rows(const float* u, int64_t rows, int64_t r, int32_t* touched);

/** backup (nt, cols) ← W[touched, :]; then W[i, j] ← fl32(W[i, j] + Σ_k U[i, k] V[j, k]) with the
 *  sum in float64, for every row (untouched rows have a zero update and are unchanged). */
Status update_apply(float* w,              // (rows, cols)
                    const float* u,        // (rows, r)
                    const float* v,        // (cols, r)
                    int64_t rows, int64_t cols, int64_t r,
                    const int32_t* touched,  // (nt) from update_touched_rows
                    int64_t nt,
                    float* backup);          // (nt, cols) out; may be null for no backup

}  // namespace rome
