#!/usr/bin/env bash
# Builds the addon's C++ test program with -fsanitize=address,undefined and runs it (CPU kernels;
# CUDA off, since sanitizers and nvcc objects do not mix). Called by .ci/run. Any report fails it.
# OpenMP's runtime keeps thread pools alive at exit, which LeakSanitizer may report; suppress those.
set -euo pipefail
cd "$(dirname "$0")/.."
supp="$(mktemp)"
trap 'rm -f "$supp"' EXIT
printf 'leak:libgomp\nleak:libopenblas\n' > "$supp"
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0"
export LSAN_OPTIONS="suppressions=$supp"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
for blas in ON OFF; do
  node scripts/test-native.mjs --sanitize --cuda=OFF --blas="$blas"
done
