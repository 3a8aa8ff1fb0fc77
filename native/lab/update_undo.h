// Lab: the exact undo of update_apply (update.h), writing back the rows its backup saved. lib/
// does not call it: edits are held as factors beside the base weights and never written into
// them, except by an explicit merge on export. Kept with its test in the C++ test program.
#pragma once
#include "update.h"

namespace rome {

/** W[touched[t], :] ← backup[t, :]. */
Status update_undo(float* w,                 // (rows, cols)
                   int64_t rows, int64_t cols,
                   const int32_t* touched,   // (nt)
                   int64_t nt,
                   const float* backup);     // (nt, cols)

}  // namespace rome
