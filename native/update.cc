// CPU low-rank updates with exact undo (see update.h).
#include "update.h"

#include <cstring>

namespace rome {

int64_t update_touched_rows(const float* u, int64_t rows, int64_t r, int32_t* touched) {
  int64_t nt = 0;
  for (int64_t i = 0; i < rows; i++) {
    bool any = false;
    for (int64_t k = 0; k < r && !any; k++) any = u[i * r + k] != 0.0f;
    if (any) {
      if (touched) touched[nt] = int32_t(i);
      nt++;
    }
  }
  return nt;
}

static Status check_rows(const int32_t* touched, int64_t nt, int64_t rows) {
  for (int64_t t = 0; t < nt; t++)
    if (touched[t] < 0 || touched[t] >= rows)
      return Status::Error("ERR_NATIVE_ARGUMENT", "backup row " + std::to_string(touched[t]) + " is outside [0, " +
                                                      std::to_string(rows) + ")");
  return Status::Ok();
}

Status update_apply(float* w, const float* u, const float* v, int64_t rows, int64_t cols, int64_t r,
                    const int32_t* touched, int64_t nt, float* backup) {
  Status s = check_rows(touched, nt, rows);
  if (!s.ok()) return s;
  if (backup)
    for (int64_t t = 0; t < nt; t++) std::memcpy(backup + t * cols, w + int64_t(touched[t]) * cols, cols * sizeof(float));
#pragma omp parallel for num_threads(get_threads()) schedule(static) if (double(nt) * cols * r > double(kParallelFlops))
  for (int64_t t = 0; t < nt; t++) {
    const int64_t i = touched[t];
    const float* ui = u + i * r;  // (r)
    float* wi = w + i * cols;     // (cols)
    if (r == 1) {
      const double a = ui[0];
      for (int64_t j = 0; j < cols; j++) wi[j] = float(double(wi[j]) + a * double(v[j]));
    } else {
      for (int64_t j = 0; j < cols; j++) {
        const float* vj = v + j * r;  // (r)
        double sum = 0;
        for (int64_t k = 0; k < r; k++) sum += double(ui[k]) * double(vj[k]);
        wi[j] = float(double(wi[j]) + sum);
      }
    }
  }
  return Status::Ok();
}

}  // namespace rome
