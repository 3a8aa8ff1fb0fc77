#!/usr/bin/env bash
# Address and undefined-behaviour sanitizers over the addon's native code (CPU kernels; CUDA off,
# since sanitizers and nvcc objects do not mix). Called by .ci/run. Any report fails it.
# 1. The C++ test program built with -fsanitize=address,undefined, with and without OpenBLAS.
#    OpenMP's runtime keeps thread pools alive at exit, which LeakSanitizer may report; suppress those.
# 2. The addon itself built with the same flags (build/asan), loaded by node with the ASan runtime
#    preloaded, running the raw-addon fuzz (test/fixtures/native-fuzz.mjs: 20,000 seeded calls over
#    every export) and its regression cases. node is not instrumented, so leaks are not checked there.
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

npx cmake-js compile --out build/asan --CDROME_SANITIZE=ON --CDROME_USE_CUDA=OFF
asan="$(${CXX:-g++} -print-file-name=libasan.so)"
for args in "fuzz 42 20000" "regress"; do
  echo "== raw-addon fuzz under ASan/UBSan: $args"
  # shellcheck disable=SC2086
  ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0" LD_PRELOAD="$asan" \
    node --expose-gc test/fixtures/native-fuzz.mjs build/asan/Release/rome_native.node $args
done
