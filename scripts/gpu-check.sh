#!/usr/bin/env bash
# The one prepared check for a machine with an NVIDIA GPU and no .NET (docs/CUDA.md).
#   scripts/gpu-check.sh publish      here (needs the .NET SDK): out/gpu-check/bundle/gpu-check, the CUDA tests
#                                     with a small runner and the whole nsparse program in one self-contained,
#                                     trimmed, compressed linux-x64 file; fails above 48 MiB (the device tool
#                                     carries 64 MiB per run, the checkout included)
#   scripts/gpu-check.sh run          there: the full check in at most 8 minutes; every result is written to
#                                     $OUT (else out/gpu-check/results) as soon as it exists, most informative
#                                     first, and a part that fails or times out does not stop the parts after it
#   scripts/gpu-check.sh run --quick  at most 2 minutes: device query, op parity, one training-step bench
#   scripts/gpu-check.sh ci           CI: publish, then `run` with no SDK visible (no dotnet on PATH, no
#                                     DOTNET_ROOT); on a machine without a GPU `run` says so, counts the CUDA
#                                     tests it skipped and runs the bundle's CPU self-check
# $OUT receives at most 8 files (the device tool's limit): summary.txt, device.txt, tests.log,
# bench-kernels.log, bench-train.log, crosscheck.log, pretrain.log, pretrain-report.tar.gz.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bundle=$repo/out/gpu-check/bundle
exe=$bundle/gpu-check
max_bundle_mib=48

bundle_mib() { du -sm "$bundle" | cut -f1; }

publish() {
  echo "== publishing $bundle"
  rm -rf "$bundle"
  # Single-file with compression keeps the bundle well under the carry limit; native libraries (SkiaSharp
  # for the plots) are packed too and extracted on first start.
  dotnet publish "$repo/scripts/gpu-check/NativeSparsity.GpuCheck.csproj" -c Release -r linux-x64 --self-contained \
    -p:PublishTrimmed=true -p:InvariantGlobalization=true -p:DebugType=none \
    -p:PublishSingleFile=true -p:EnableCompressionInSingleFile=true -p:IncludeNativeLibrariesForSelfExtract=true \
    -o "$bundle" || return 1
  local mib; mib=$(bundle_mib)
  echo "bundle: $bundle, ${mib} MiB ($(du -sb "$bundle" | cut -f1) bytes), limit ${max_bundle_mib} MiB"
  if (( mib > max_bundle_mib )); then
    echo "error: the GPU check bundle is ${mib} MiB, over the ${max_bundle_mib} MiB limit (the device tool carries 64 MiB per run, the checkout included)" >&2
    return 1
  fi
}

# ---------------------------------------------------------------------------------------------------
# run: parts under one deadline

results=""; deadline=0; reserve=15; failures=0

note() { echo "$*" | tee -a "$results/summary.txt"; }

# part NAME CAP LOG FUNCTION [ARGS...]: runs FUNCTION under `timeout` (its cap, cut to what is left of
# the deadline), appending to LOG and to the console; records the outcome in summary.txt.
part() {
  local name=$1 cap=$2 log=$results/$3; shift 3
  local now left t0 rc
  now=$(date +%s); left=$(( deadline - now - reserve ))
  if (( left < 5 )); then note "$name: not run (the time budget was spent)"; failures=$((failures + 1)); return; fi
  (( cap > left )) && cap=$left
  echo "== $name (at most ${cap} s)" | tee -a "$log"
  t0=$(date +%s)
  timeout --kill-after=5 "$cap" bash -c '"$@"' _ "$@" 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  local took=$(( $(date +%s) - t0 ))
  case $rc in
    0) note "$name: ok (${took} s)" ;;
    124|137) note "$name: TIMED OUT after ${took} s (cap ${cap} s; see $(basename "$log"))"; failures=$((failures + 1)) ;;
    *) note "$name: FAILED, exit $rc (${took} s; see $(basename "$log"))"; failures=$((failures + 1)) ;;
  esac
}

has_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }

device_query() {
  echo "host: $(uname -srm), $(nproc) CPUs"
  echo "SDK visible: $(command -v dotnet || echo 'no (no dotnet on PATH)'); DOTNET_ROOT=${DOTNET_ROOT:-unset}"
  if has_gpu; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,compute_cap --format=csv
    nvidia-smi
  else
    echo "no GPU present: nvidia-smi is $(command -v nvidia-smi >/dev/null && echo 'there but lists no device' || echo 'not installed')"
  fi
}

tests_in_order() {
  # Most informative first: every op against the CPU, then the sparsity core's device kernels, then
  # whole models, then compilation with the machine's NVRTC. The host-only tests (g++ emulation, the
  # Philox header) already run in CI and are left out on a GPU machine.
  local rc=0
  "$exe" tests CudaParityTests || rc=1
  "$exe" tests CudaThresholdParityTests || rc=1
  "$exe" tests CudaModelParityTests || rc=1
  "$exe" tests '!CudaParityTests' '!CudaThresholdParityTests' '!CudaModelParityTests' '!HostKernelTests' '!PhiloxHeaderTests' || rc=1
  return $rc
}
op_parity() { "$exe" tests CudaParityTests; }
all_tests() { "$exe" tests; }

bench_kernels() { "$exe" nsparse bench kernels --device cuda --iterations 30; }

bench_train() {
  local rc=0 preset
  for preset in "$@"; do
    echo "-- $preset"
    timeout 60 "$exe" nsparse bench train --device cuda --preset "$preset" --steps 10 || rc=1
    echo "-- $preset, per-op profile"
    timeout 60 "$exe" nsparse bench train --device cuda --preset "$preset" --steps 3 --profile || rc=1
  done
  return $rc
}

# CPU side of the bundle: it starts, trains a few steps and reads its own checkpoint back.
cpu_selfcheck() {
  local dir=$work/selfcheck
  rm -rf "$dir"
  "$exe" nsparse pretrain --device cpu --steps 20 --batch-size 8 --seq-len 32 --warmup 2 --probe-every 10 \
    --checkpoint-every 20 --cache "$work/cache" --out "$dir" || return 1
  "$exe" nsparse inspect "$dir/checkpoints/step-0000020" || return 1
}

crosscheck() {
  local device=$1 dense=$work/xcheck-dense pruned=$work/xcheck-pruned rc=0
  if ! command -v python3 >/dev/null; then
    echo "SKIPPED: the Hugging Face cross-check and PyTorch eager timing did not run: no python3 here"
    return 0
  fi
  if ! python3 -c 'import transformers' >/dev/null 2>&1; then
    # The script says what it skipped and why; no checkpoints are worth making for it.
    python3 "$repo/scripts/reference/hf_crosscheck.py" --nsparse "$exe" --checkpoint "(none made)"
    echo "PyTorch eager timing SKIPPED: transformers/torch are not importable here"
    return 0
  fi
  rm -rf "$dense" "$pruned"
  "$exe" nsparse pretrain --device "$device" --steps 40 --batch-size 16 --seq-len 64 --warmup 4 --probe-every 0 \
    --checkpoint-every 40 --cache "$work/cache" --out "$dense" >/dev/null || return 1
  local ckpt=$dense/checkpoints/step-0000040
  "$exe" nsparse finetune --device "$device" --checkpoint "$ckpt" --task supersense --sparsity 0.5 --max-steps 5 \
    --max-examples 200 --save --out "$pruned" >/dev/null || return 1
  python3 "$repo/scripts/reference/hf_crosscheck.py" --nsparse "$exe" --prefix nsparse \
    --checkpoint "$ckpt" --checkpoint "$pruned/checkpoint" || rc=1
  if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null && [ "$device" = cuda ]; then
    local preset
    for preset in tiny mini small base; do
      timeout 60 python3 "$repo/scripts/reference/bert_step_torch.py" --device cuda --preset "$preset" --steps 10 || rc=1
    done
  else
    echo "PyTorch eager timing SKIPPED: $( [ "$device" = cuda ] && echo 'torch with CUDA is not importable here' || echo 'no GPU here')"
  fi
  return $rc
}

pretrain_claim2() {
  # Issue 14's claim-2 run at the CPU run's settings on the largest preset that fits the time left;
  # killed by the deadline, its CSVs so far still come back in pretrain-report.tar.gz.
  "$exe" nsparse study abrupt --device cuda --preset "${GPU_CHECK_PRETRAIN_PRESET:-mini}" --seed 1 --steps 20000 \
    --batch-size 16 --seq-len 64 --lr 1e-3 --warmup 1000 --weight-decay 0.01 --probe-every 100 --omp-every 500 \
    --checkpoint-every 2000 --keep-last 1 --data-fractions 1.0,0.6 --cache "$work/cache" --out "$work/abrupt"
}

pack_pretrain_report() {
  [ -d "$work/abrupt" ] || return 0
  tar -C "$work" --exclude=checkpoints -czf "$results/pretrain-report.tar.gz" abrupt && \
    note "pretrain report: pretrain-report.tar.gz ($(du -h "$results/pretrain-report.tar.gz" | cut -f1))"
}

export -f has_gpu device_query tests_in_order op_parity all_tests bench_kernels bench_train cpu_selfcheck crosscheck pretrain_claim2

run() {
  local quick=0
  [ "${1:-}" = "--quick" ] && quick=1
  if [ ! -x "$exe" ]; then
    echo "gpu-check: no bundle at $exe; run scripts/gpu-check.sh publish on a machine with .NET first" >&2
    return 2
  fi
  results=${OUT:-$repo/out/gpu-check/results}
  mkdir -p "$results"; : > "$results/summary.txt"
  work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
  export exe repo work
  # Outside $OUT: only eight files come back from a device run.
  export NSPARSE_KERNEL_CACHE=${NSPARSE_KERNEL_CACHE:-$work/kernel-cache}
  export DOTNET_BUNDLE_EXTRACT_BASE_DIR=${DOTNET_BUNDLE_EXTRACT_BASE_DIR:-${TMPDIR:-/tmp}/gpu-check-extract}
  export PYTHONUNBUFFERED=1
  local budget=$(( quick ? 120 : 480 ))
  deadline=$(( $(date +%s) + budget ))
  note "gpu-check run$( ((quick)) && echo ' --quick'): budget ${budget} s, bundle $(bundle_mib) MiB, results in $results"

  part "device query" 20 device.txt device_query
  if ! has_gpu; then
    note "no GPU present: the CUDA tests report themselves skipped; running the CPU-side self-check"
    part "CUDA tests (no GPU)" 240 tests.log all_tests
    grep -E '^[0-9]+ passed, [0-9]+ failed' "$results/tests.log" | tail -n 1 | sed 's/^/tests: /' | tee -a "$results/summary.txt"
    note "skipped CUDA tests: $(grep -c '^SKIP ' "$results/tests.log")"
    part "CPU self-check (pretrain + inspect)" 120 pretrain.log cpu_selfcheck
    part "cross-check script" 60 crosscheck.log crosscheck cpu
  elif (( quick )); then
    part "op parity" 75 tests.log op_parity
    part "step bench (tiny)" 30 bench-train.log bench_train tiny
  else
    part "CUDA tests" 210 tests.log tests_in_order
    part "kernel bench" 50 bench-kernels.log bench_kernels
    part "step bench" 110 bench-train.log bench_train tiny mini small base
    part "HF cross-check and PyTorch eager" 90 crosscheck.log crosscheck cuda
    part "claim-2 pre-training" 600 pretrain.log pretrain_claim2
    pack_pretrain_report
  fi

  echo
  echo "== summary ($results/summary.txt)"
  cat "$results/summary.txt"
  grep -hE '^FAIL ' "$results/tests.log" 2>/dev/null | head -n 20
  grep -hE '^(device|ceilings):' "$results/bench-kernels.log" 2>/dev/null
  grep -hE 'tok/s|tokens/s|GEMM' "$results/bench-train.log" 2>/dev/null | head -n 16
  grep -hE '^(PASS|FAIL|SKIPPED)' "$results/crosscheck.log" 2>/dev/null
  rm -rf "$work"
  (( failures == 0 ))
}

# ci: the bundle is built and then run as on a GPU machine, with the SDK out of sight.
ci() {
  publish || return 1
  local clean; clean=$(mktemp -d)
  mkdir -p "$clean/bin" "$clean/home" "$clean/tmp" "$clean/out"
  # A PATH of every command this machine has except dotnet.
  local d f
  for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
    [ -d "$d" ] || continue
    for f in "$d"/*; do
      local name=${f##*/}
      [ "$name" = dotnet ] && continue
      [ -e "$clean/bin/$name" ] || ln -s "$f" "$clean/bin/$name"
    done
  done
  env -i HOME="$clean/home" TMPDIR="$clean/tmp" PATH="$clean/bin" OUT="$clean/out" LANG=C.UTF-8 \
    bash "$repo/scripts/gpu-check.sh" run
  local rc=$?
  echo "bundle: $(bundle_mib) MiB (limit ${max_bundle_mib} MiB); clean-environment run exit $rc"
  rm -rf "$clean"
  return $rc
}

case "${1:-}" in
  publish) publish ;;
  run) shift; run "$@" ;;
  ci) ci ;;
  *) echo "usage: scripts/gpu-check.sh publish | run [--quick] | ci" >&2; exit 2 ;;
esac
