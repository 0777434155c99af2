#!/usr/bin/env bash
# tools/test.sh: the project's test command (README "Tests"; .ci/run calls it).
# 1. Release build with -Werror and every backend the machine can compile (CUDA for one
#    architecture to keep CI fast; every .cu file is still compiled), then the whole CTest suite
#    (GPU tests run where a device exists and skip, saying why, where none does).
# 2. CPU-only build under AddressSanitizer + UndefinedBehaviorSanitizer, then the whole CTest suite
#    again (every test but the fuzzers; GPU tests skip there, the build has no GPU backend).
# 3. The libFuzzer targets for the GGUF reader (30 s) and the JSON parser (20 s), bounded (when
#    clang's libFuzzer exists).
# Usage: tools/test.sh [--quick]   (--quick: step 1 only)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
cuda_arch=${RWKV7_TEST_CUDA_ARCH:-90}

echo "== release build (-Werror) =="
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Release -DRWKV7_WERROR=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$cuda_arch" >/dev/null
cmake --build build-test -j "$jobs"
ctest --test-dir build-test --output-on-failure -LE fuzz -j "$jobs"

if [ "${1:-}" = "--quick" ]; then exit 0; fi

echo "== sanitizer build (ASan + UBSan, CPU backend) =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DRWKV7_WERROR=ON -DRWKV7_SANITIZE=ON \
  -DRWKV7_CUDA=OFF -DRWKV7_VULKAN=OFF -DRWKV7_FUZZ=ON >/dev/null
cmake --build build-asan -j "$jobs"
ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -LE fuzz -j "$jobs"

echo "== fuzzing the GGUF reader and the JSON parser (bounded) =="
ctest --test-dir build-asan --output-on-failure -L fuzz
