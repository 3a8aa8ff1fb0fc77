// Lab: merging two second-moment accumulators (shards of a corpus summed apart). lib/ does not
// call it (statistics accumulate in one pass); kept with its test in the C++ test program.
#pragma once
#include "moment.h"

namespace rome {

/** acc (d, d) upper += other (d, d) upper. */
void moment_merge(double* acc, const double* other, int64_t d);

}  // namespace rome
