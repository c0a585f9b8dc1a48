#!/usr/bin/env bash
# The one prepared check for a machine with an NVIDIA GPU and no .NET. Two halves:
#   scripts/gpu-check.sh publish   (here, needs the .NET SDK) builds out/gpu-check/bundle: the CUDA tests
#                                  with a small runner and the whole nsparse program, self-contained for
#                                  linux-x64, trimmed, invariant globalization (about 30 MB)
#   scripts/gpu-check.sh run       (there) runs the CUDA tests and `nsparse bench kernels --device cuda`,
#                                  and prints a short table last; logs go to $OUT (or out/gpu-check)
#   scripts/gpu-check.sh           publish when dotnet is on PATH, then run when an NVIDIA driver is present
# Fits one 10-minute call: tests at most 5 minutes, the benchmark at most 4 (each under `timeout`).
# See docs/CUDA.md.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bundle=$repo/out/gpu-check/bundle

publish() {
  echo "== publishing $bundle"
  rm -rf "$bundle"
  dotnet publish "$repo/scripts/gpu-check/NativeSparsity.GpuCheck.csproj" -c Release -r linux-x64 --self-contained \
    -p:PublishTrimmed=true -p:InvariantGlobalization=true -p:DebugType=none -o "$bundle" || return 1
  du -sh "$bundle"
}

run() {
  if [ ! -x "$bundle/gpu-check" ]; then
    echo "gpu-check: no bundle at $bundle; run scripts/gpu-check.sh publish on a machine with .NET first" >&2
    return 2
  fi
  local logs=${OUT:-$repo/out/gpu-check}
  mkdir -p "$logs"
  export NSPARSE_KERNEL_CACHE=${NSPARSE_KERNEL_CACHE:-$logs/kernel-cache}
  echo "== GPU"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 || echo "(nvidia-smi not available)"

  echo "== CUDA tests"
  timeout 300 "$bundle/gpu-check" tests 2>&1 | tee "$logs/tests.log"
  local tests_rc=${PIPESTATUS[0]}

  echo "== nsparse bench kernels --device cuda"
  timeout 240 "$bundle/gpu-check" nsparse bench kernels --device cuda --iterations 30 2>&1 | tee "$logs/bench.log"
  local bench_rc=${PIPESTATUS[0]}

  echo
  echo "== summary"
  grep -E '^(device|ceilings):' "$logs/bench.log" || true
  sed -n '/^kernel /,$p' "$logs/bench.log"
  grep -E '^FAIL ' "$logs/tests.log" | head -n 20 || true
  echo "tests: $(tail -n 1 "$logs/tests.log") (exit $tests_rc); bench exit $bench_rc"
  [ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
}

case "${1:-all}" in
  publish) publish ;;
  run) run ;;
  all)
    if command -v dotnet >/dev/null; then publish || exit 1; fi
    run ;;
  *) echo "usage: scripts/gpu-check.sh [publish|run]" >&2; exit 2 ;;
esac
