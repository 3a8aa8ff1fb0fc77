// Lab: see moment_merge.h.
#include "moment_merge.h"

namespace rome {

void moment_merge(double* acc, const double* other, int64_t d) {
#pragma omp parallel for num_threads(get_threads()) schedule(dynamic, 16) if (d * d > 1 << 18)
  for (int64_t i = 0; i < d; i++)
    for (int64_t j = i; j < d; j++) acc[i * d + j] += other[i * d + j];
}

}  // namespace rome
