// Lab: see update_undo.h.
#include "update_undo.h"

#include <cstring>

namespace rome {

Status update_undo(float* w, int64_t rows, int64_t cols, const int32_t* touched, int64_t nt, const float* backup) {
  for (int64_t t = 0; t < nt; t++)
    if (touched[t] < 0 || touched[t] >= rows)
      return Status::Error("ERR_NATIVE_ARGUMENT", "backup row " + std::to_string(touched[t]) + " is outside [0, " +
                                                      std::to_string(rows) + ")");
  for (int64_t t = 0; t < nt; t++) std::memcpy(w + int64_t(touched[t]) * cols, backup + t * cols, cols * sizeof(float));
  return Status::Ok();
}

}  // namespace rome
