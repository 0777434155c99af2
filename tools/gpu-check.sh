#!/usr/bin/env bash
# tools/gpu-check.sh: the first minutes on a machine with an NVIDIA GPU, in one command (README
# "GPU check"). Prints nvidia-smi and the driver/runtime versions, runs the GPU tests
# (ctest -L gpu, the op tests for CUDA and their --perf mode; a failing op test again with
# RWKV7_CUDA_PDL=0; the matmul cases on the SIMT tiles, RWKV7_CUDA_SIMT_TILES=1), the kernels of a recorded decode step (RWKV7_CUDA_GRAPH_INFO=1), reruns the fixture logits with
# RWKV7_CHECK_RESULTS=1 RWKV7_SYNC_EACH_OP=1 on the first failure, then `rwkv7 bench --synthetic
# 1.5B,7.2B --types bf16,q8_0,q4_k -b 1,64 -o json` on CUDA; where a Vulkan GPU is listed, every
# Vulkan op case, the decode profile, matvec and WKV-7 timings and the Vulkan bench. Every output goes under one folder (--out); a summary.txt lists each step's exit code
# and time. Each step has a time budget so the whole run stays under 8 minutes (budgets:
# GPU_CHECK_TEST_BUDGET per test program, 150 s; GPU_CHECK_BENCH_BUDGET for the CUDA bench, 180 s).
#
# Usage:
#   tools/gpu-check.sh [--out DIR] [--build-dir B] [--arch SM]   build for this GPU (or reuse B), run
#   tools/gpu-check.sh --pack DIR [--arch SM] [--build-dir B]    build here (no GPU needed), gather
#                                                                what a run needs into DIR, stop
#   tools/gpu-check.sh --from-pack DIR [--out DIR]               run from a pack, no build, no ctest
# A pack holds librwkv7.so, the rwkv7 CLI and the GPU test programs (they find the library through
# their $ORIGIN rpath) plus tests.txt; the test data comes from the checkout (tests/data, passed
# as RWKV7_TEST_DATA), so the pack runs from any copy of the repository. --arch defaults to the
# first GPU's compute capability (nvidia-smi), or 90 where there is none.
# Exit code: 0 when every step passed, 1 when one failed, 2 on bad usage.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

out="" build="build-gpu" arch="" pack="" from_pack=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?}; shift 2 ;;
    --build-dir) build=${2:?}; shift 2 ;;
    --arch) arch=${2:?}; shift 2 ;;
    --pack) pack=${2:?}; shift 2 ;;
    --from-pack) from_pack=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [ -n "$pack" ] && [ -n "$from_pack" ]; then
  echo "gpu-check: --pack and --from-pack exclude each other" >&2; exit 2
fi

detect_arch() {
  local cc
  cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d ' .')
  echo "${cc:-90}"
}

# The GPU-labelled test programs: CTest's gpu tests that are executables of their own
# (tests/<name>.c or .cu); the CTest-only variants (test_ops_vk_*, test_vk_validation_*,
# test_vk_profile: another program with other arguments or variables) are steps below.
gpu_test_programs() {
  ctest --test-dir "$build" -N -L gpu 2>/dev/null | sed -n 's/^ *Test *#[0-9]*: *//p' |
    while read -r t; do [ -f "tests/$t.c" ] || [ -f "tests/$t.cu" ] && echo "$t"; done
}

# ---- build (or reuse) ----
build_tree() {
  [ -n "$arch" ] || arch=$(detect_arch)
  echo "== build: $build for sm_$arch =="
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DRWKV7_CUDA=ON -DRWKV7_SHARED=ON \
    -DCMAKE_CUDA_ARCHITECTURES="$arch" >/dev/null || return 1
  # only what the check runs: the CLI and the GPU-labelled tests
  local targets=(rwkv7-cli)
  mapfile -t gpu_tests < <(gpu_test_programs)
  targets+=("${gpu_tests[@]}")
  # test_ops (issue "The op as the unit") is labelled unit but runs on every backend
  if ctest --test-dir "$build" -N -R '^test_ops$' 2>/dev/null | grep -q 'test_ops'; then
    targets+=(test_ops)
    gpu_tests+=(test_ops_cuda)
  fi
  cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target "${targets[@]}" || return 1
}

if [ -n "$pack" ]; then
  build_tree || { echo "gpu-check: build failed" >&2; exit 1; }
  rm -rf "$pack" && mkdir -p "$pack"
  cp -L "$build"/librwkv7.so "$build"/rwkv7 "$pack"/ || exit 1
  : > "$pack/tests.txt"
  for t in "${gpu_tests[@]}"; do
    [ "$t" = test_ops_cuda ] && t=test_ops
    [ -x "$build/$t" ] && cp "$build/$t" "$pack/" && echo "$t" >> "$pack/tests.txt"
  done
  echo "sm_$arch $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" > "$pack/build.txt"
  echo "== pack: $pack ($(du -sh "$pack" | cut -f1), $(wc -l < "$pack/tests.txt") tests) =="
  ls -l "$pack"
  exit 0
fi

if [ -n "$from_pack" ]; then
  bin=$(cd "$from_pack" && pwd)
  [ -x "$bin/rwkv7" ] && [ -f "$bin/tests.txt" ] || { echo "gpu-check: $from_pack is not a pack" >&2; exit 2; }
  mapfile -t gpu_tests < "$bin/tests.txt"
else
  if [ ! -x "$build/rwkv7" ] || [ ! -f "$build/CTestTestfile.cmake" ]; then
    build_tree || { echo "gpu-check: build failed" >&2; exit 1; }
  fi
  bin=$(cd "$build" && pwd)
  mapfile -t gpu_tests < <(gpu_test_programs)
fi

[ -n "$out" ] || out="gpu-check-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out"
out=$(cd "$out" && pwd)
export RWKV7_TEST_DATA="$repo/tests/data"
failed=0
summary="$out/summary.txt"
: > "$summary"

# step NAME SECONDS CMD...: runs CMD with a time budget, output to $out/NAME.log (STEP_JSON=1:
# stdout to $out/NAME.json). Exit 77 (a test's skip) counts as passed.
step() {
  local name=$1 budget=$2; shift 2
  local t0=$SECONDS rc
  echo "== $name (budget ${budget}s) =="
  if [ "${STEP_JSON:-0}" = 1 ]; then # results (stdout) apart from progress (stderr)
    timeout -k 10 "$budget" "$@" > "$out/$name.json" 2> "$out/$name.log"
  else
    timeout -k 10 "$budget" "$@" > "$out/$name.log" 2>&1
  fi
  rc=$?
  tail -n 15 "$out/$name.log"
  printf '%-24s rc %3d  %4ds  %s\n' "$name" "$rc" $((SECONDS - t0)) "$*" | tee -a "$summary"
  [ $rc -eq 0 ] || [ $rc -eq 77 ] || failed=1
  return $rc
}

# ---- versions ----
{
  echo "date: $(date -u)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  [ -n "$from_pack" ] && echo "pack: $(cat "$bin/build.txt" 2>/dev/null)"
  nvidia-smi 2>&1 || echo "nvidia-smi: not available"
  nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total,clocks.max.sm,clocks.max.mem \
    --format=csv 2>&1 || true
} > "$out/versions.log"
cat "$out/versions.log"
step devices 30 "$bin/rwkv7" devices

# ---- tests ----
model_failed=0
for t in "${gpu_tests[@]}"; do
  case "$t" in test_ops|test_ops_cuda) continue ;; esac
  step "$t" "${GPU_CHECK_TEST_BUDGET:-150}" "$bin/$t"
  rc=$?
  [ "$t" = test_gpu_model ] && [ $rc -ne 0 ] && [ $rc -ne 77 ] && model_failed=1
done
# The op test: test_ops (one program per backend, issue "The op as the unit") or test_cuda_ops.
if [ -x "$bin/test_ops" ]; then
  # on sm_90 kernels start early (programmatic dependent launch): a failure is rerun without it
  step test_ops_cuda 90 "$bin/test_ops" -b cuda ||
    RWKV7_CUDA_PDL=0 step test_ops_cuda_nopdl 90 "$bin/test_ops" -b cuda
  step test_ops_cuda_perf 90 "$bin/test_ops" -b cuda --perf
  # the prefill products again on the fp32 SIMT tiles sm_75 uses (cuda/gemm.cu)
  RWKV7_CUDA_SIMT_TILES=1 step test_ops_cuda_simt 60 "$bin/test_ops" -b cuda -o matmul
fi
# kernels per decoded token as recorded in the CUDA graph (README "CUDA": 18 L + 1 today)
RWKV7_CUDA_GRAPH_INFO=1 step graph_kernels 60 "$bin/rwkv7" bench --synthetic 1.5B --types q4_k -b 1 -p 8 -n 4 -r 1 \
  --backend cuda
if [ $model_failed -eq 1 ]; then
  RWKV7_CHECK_RESULTS=1 RWKV7_SYNC_EACH_OP=1 step test_gpu_model_checked 120 "$bin/test_gpu_model"
fi

# ---- benchmarks (numbers for bench/RESULTS.md; not pass/fail beyond finite logits) ----
STEP_JSON=1 step bench_cuda "${GPU_CHECK_BENCH_BUDGET:-180}" "$bin/rwkv7" bench --synthetic 1.5B,7.2B --types bf16,q8_0,q4_k \
  -b 1,64 -r 3 -o json --backend cuda
if "$bin/rwkv7" devices 2>/dev/null | grep -q '^Vulkan[0-9]' &&
   ! "$bin/rwkv7" devices 2>/dev/null | grep -qi 'llvmpipe'; then
  # every Vulkan op case against the CPU (the cooperative-matrix prefill and the T > 1 activation
  # staging are on by default on GPUs), the chunked WKV-7 forced, then the benchmarks
  if [ -x "$bin/test_ops" ]; then
    step test_ops_vk 150 "$bin/test_ops" -b vulkan
    RWKV7_VK_WKV=chunked step test_ops_vk_wkv_chunked 60 "$bin/test_ops" -b vulkan -o wkv7
  fi
  STEP_JSON=1 step bench_vulkan 90 "$bin/rwkv7" bench --synthetic 1.5B --types bf16,q8_0,q4_k -b 1,64 -r 3 -o json \
    --backend vulkan
  # per-kernel device times of a decode step (timestamps) and the decode matvecs at model shapes
  RWKV7_VK_PROFILE=1 step vk_profile 60 "$bin/rwkv7" bench --synthetic 1.5B --types q4_k -p 0 -n 4 -r 1 --no-warmup \
    --backend vulkan
  step test_ops_vk_matvec_perf 60 "$bin/test_ops" -b vulkan --perf -p model-aligned
  # T = 4 without the shared-memory activation staging (on by default on GPUs): keep it or not
  RWKV7_VK_MATVEC_STAGE=0 step test_ops_vk_matvec_perf_unstaged 60 "$bin/test_ops" -b vulkan --perf \
    -p 't=4,model-aligned'
  # WKV-7 prefill: the chunked kernels (default on GPUs from 32 tokens) against the serial one
  RWKV7_VK_WKV=chunked step test_ops_vk_wkv_chunked_perf 60 "$bin/test_ops" -b vulkan --perf -o wkv7
  RWKV7_VK_WKV=serial step test_ops_vk_wkv_serial_perf 60 "$bin/test_ops" -b vulkan --perf -o wkv7
fi

echo "== summary ($out) =="
cat "$summary"
exit $failed
