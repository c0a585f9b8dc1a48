#!/usr/bin/env bash
# Side by side: `nsparse bench train` against the PyTorch reference step
# (scripts/reference/bert_step_torch.py). PyTorch is a yardstick for measuring only, never a
# dependency of the product; this script installs Debian's python3-torch if it is missing.
#
# Runs ours and PyTorch alternately (A B, then B A, ...) for every preset and thread count, so
# both see the same spells of load on a shared machine, and prints a Markdown table: median step
# time of each, tokens/s, and the ratio ours/PyTorch in tokens/s (above 1: ours is faster), both
# as the ratio of the medians and as the median of the per-round ratios. With more than one thread
# PyTorch runs twice a round: as configured by default (OpenMP pool and OpenBLAS both at N
# threads) and with OpenBLAS held to one thread (the two pools otherwise compete for the cores);
# the ratio is taken against the faster of the two.
#
# Usage: scripts/bench-vs-pytorch.sh            (defaults below; override with the variables)
#   PRESETS="tiny mini small" THREADS="2 1" ROUNDS=3 STEPS=5 WARMUP=1 BATCH=32 SEQ=128 VOCAB=8192
set -euo pipefail
cd "$(dirname "$0")/.."

PRESETS=${PRESETS:-"tiny mini small"}
THREADS=${THREADS:-"2 1"}
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-5}
WARMUP=${WARMUP:-1}
BATCH=${BATCH:-32}
SEQ=${SEQ:-128}
VOCAB=${VOCAB:-8192}
PY=/usr/bin/python3                      # Debian's torch installs for the system Python
NSPARSE=experiments/bin/Release/net10.0/nsparse

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    echo "# installing python3-torch (Debian) for the reference" >&2
    if [ "$(id -u)" -eq 0 ]; then apt-get install -y python3-torch >&2; else sudo apt-get install -y python3-torch >&2; fi
fi
[ -x "$NSPARSE" ] || dotnet build -c Release >&2

log=$(mktemp /tmp/bench-vs-pytorch.XXXXXX.tsv)
echo "# raw results: $log" >&2
"$PY" - <<'EOF' >&2
import torch
import os, re
cfg = torch.__config__.show()
info = re.findall(r"(BLAS_INFO=\w+|LAPACK_INFO=\w+|USE_MKLDNN=\w+|CPU capability usage: \w+)", cfg)
maps = {l.split()[-1] for l in open("/proc/self/maps") if "blas" in l.lower() and "/" in l}
print("# torch", torch.__version__, "|", ", ".join(info), "| BLAS loaded:", ", ".join(sorted(os.path.realpath(m) for m in maps)))
EOF

run_ours() {   # preset threads -> "step_ms gemm_share"
    local out
    out=$("$NSPARSE" bench train --preset "$1" --threads "$2" --steps "$STEPS" \
          --batch-size "$BATCH" --seq-len "$SEQ" --vocab-size "$VOCAB")
    local step share
    step=$(echo "$out" | awk -F'|' '/step \(sum\)/ { gsub(/ /, "", $3); print $3 }')
    share=$(echo "$out" | sed -n 's/^GEMM share of the step: \([0-9.]*\) %.*/\1/p')
    echo "$step ${share:-NA}"
}

run_torch() {  # preset threads openblas_threads -> "step_ms"
    "$PY" scripts/reference/bert_step_torch.py --preset "$1" --threads "$2" --openblas-threads "$3" --steps "$STEPS" \
        --warmup "$WARMUP" --batch-size "$BATCH" --seq-len "$SEQ" --vocab-size "$VOCAB" |
        "$PY" -c 'import json, sys; print(json.load(sys.stdin)["step_ms"])'
}

for t in $THREADS; do
    for p in $PRESETS; do
        for r in $(seq 1 "$ROUNDS"); do
            torch1=NA
            if [ $((r % 2)) -eq 1 ]; then
                read -r ours share <<<"$(run_ours "$p" "$t")"; torch=$(run_torch "$p" "$t" "$t")
                [ "$t" -gt 1 ] && torch1=$(run_torch "$p" "$t" 1)
            else
                [ "$t" -gt 1 ] && torch1=$(run_torch "$p" "$t" 1)
                torch=$(run_torch "$p" "$t" "$t"); read -r ours share <<<"$(run_ours "$p" "$t")"
            fi
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$p" "$t" "$r" "$ours" "$torch" "$torch1" "$share" "$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$log" >&2
        done
    done
done

"$PY" - "$log" "$BATCH" "$SEQ" "$ROUNDS" "$STEPS" <<'EOF'
import statistics, sys
path, batch, seq, rounds, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
tokens = batch * seq
groups = {}
for p, t, r, ours, torch, torch1, share, load in rows:
    groups.setdefault((p, t), []).append((float(ours), float(torch), float(torch1) if torch1 != "NA" else None, share, float(load)))
med = statistics.median
print(f"batch {batch} x seq {seq}; {rounds} interleaved rounds per line, each the median of {steps} steps")
print()
print("| preset | threads | ours step ms (median, range) | PyTorch step ms (median, range) | PyTorch, OpenBLAS 1 thread | ours tokens/s | PyTorch tokens/s (faster) | ours/PyTorch (ratio of medians) | ours/PyTorch (median per-round ratio) | ours GEMM share | load avg |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for (p, t), g in groups.items():
    o = [x[0] for x in g]; q = [x[1] for x in g]; q1 = [x[2] for x in g if x[2] is not None]
    use1 = bool(q1) and med(q1) < med(q)
    best = q1 if use1 else q
    per_round = [(x[2] if use1 else x[1]) / x[0] for x in g]
    shares = [float(x[3]) for x in g if x[3] != "NA"]
    loads = [x[4] for x in g]
    alt = f"{med(q1):.0f} ({min(q1):.0f}-{max(q1):.0f})" if q1 else "-"
    print(f"| {p} | {t} | {med(o):.0f} ({min(o):.0f}-{max(o):.0f}) | {med(q):.0f} ({min(q):.0f}-{max(q):.0f}) | {alt} | "
          f"{tokens / med(o) * 1e3:,.0f} | {tokens / med(best) * 1e3:,.0f} | **{med(best) / med(o):.2f}** | "
          f"{med(per_round):.2f} | {med(shares) if shares else float('nan'):.0f}% | {min(loads):.0f}-{max(loads):.0f} |")
EOF
