#!/usr/bin/env bash
# Crash trial: SIGKILL `nsparse pretrain` and `nsparse study essential` at random moments, resume each
# time, and compare the results with an uninterrupted run (docs/RELIABILITY.md). Exit 0 only when every
# trial ends bit-identical (timing columns aside) after the kills it asked for; 1 otherwise.
#
#   scripts/crash-trial.sh [--kills N] [--study-kills M] [--steps S] [--work DIR] [--nsparse CMD] [--seed K]
#
# --kills N        SIGKILLs during pretrain (default 20); 0 skips the pretrain trial
# --study-kills M  SIGKILLs during study essential's cells (default 5); 0 skips the study trial
# --steps S        pretrain steps (default 2000; each relaunch pays the start-up, so many kills want more)
# --work DIR       scratch folder (default: a new temporary one, removed on success)
# --nsparse CMD    how to run the program (default: dotnet experiments/bin/Release/net10.0/nsparse.dll;
#                  give a copy when rebuilding meanwhile, so the trial's binary does not change under it)
# --seed K         seed of the kill moments (default: random, printed)
# finetune writes no checkpoints (a cell or a run is redone whole), so it has no trial here.
set -euo pipefail

kills=20 study_kills=5 steps=2000 work="" seed=$RANDOM
root=$(cd "$(dirname "$0")/.." && pwd)
nsparse="dotnet $root/experiments/bin/Release/net10.0/nsparse.dll"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --kills) kills=$2; shift 2 ;;
    --study-kills) study_kills=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --nsparse) nsparse=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
for n in "$kills" "$study_kills" "$steps" "$seed"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "error: --kills, --study-kills, --steps and --seed take whole numbers, got '$n'" >&2; exit 2; }
done
keep_work=1
if [[ -z "$work" ]]; then work=$(mktemp -d /tmp/nsparse-crash-trial.XXXXXX); keep_work=0; fi
mkdir -p "$work"
RANDOM=$seed
echo "crash trial: $kills pretrain kills, $study_kills study kills, $steps steps, seed $seed, work $work"
failed=0
cache="$work/cache"

# Random whole milliseconds in [lo, hi) as seconds for sleep.
rand_s() { local lo=$1 hi=$2; local ms=$(( lo + (RANDOM * 32768 + RANDOM) % (hi - lo) )); printf '%d.%03d' $((ms / 1000)) $((ms % 1000)); }

# Starts "$@" in the background, waits until the ready-test (a command) passes or the process ends,
# then sleeps a random moment and kills it with SIGKILL. Returns 0 when it killed, 1 when the run ended first.
kill_once() {
  local ready=$1 lo=$2 hi=$3; shift 3
  "$@" >>"$work/trial.out" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null && ! eval "$ready"; do sleep 0.05; done
  sleep "$(rand_s "$lo" "$hi")"
  if kill -9 "$pid" 2>/dev/null; then wait "$pid" 2>/dev/null || true; return 0; fi
  wait "$pid" 2>/dev/null || true
  return 1
}

# A file with its timing columns removed: CSV columns named *seconds*/tokens_per_second, JSON "seconds"-like fields.
untimed() {
  case "$1" in
    *.csv) awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i ~ /seconds|tokens_per_second/) drop[i]=1}
                    {s=""; for(i=1;i<=NF;i++) if(!(i in drop)) s=s (s==""?"":",") $i; print s}' "$1" ;;
    *.json|*.jsonl) sed -E 's/"[a-z_]*seconds": ?[-0-9.eE+]+,? ?//g' "$1" ;;
    *) cat "$1" ;;
  esac
}

# Compares FILE under two folders: bytes for binaries, untimed text otherwise.
same() {
  local a="$1/$3" b="$2/$3"
  if [[ ! -f "$a" || ! -f "$b" ]]; then echo "  DIFFER $3: missing in one run"; return 1; fi
  case "$3" in
    *.safetensors) cmp -s "$a" "$b" || { echo "  DIFFER $3 (bytes)"; return 1; } ;;
    *) diff -q <(untimed "$a") <(untimed "$b") >/dev/null || { echo "  DIFFER $3"; diff <(untimed "$a") <(untimed "$b") | head -5; return 1; } ;;
  esac
  echo "  same   $3"
}

pre_common=(pretrain --threads 1 --layers 1 --hidden 64 --vocab-size 512 --batch-size 4 --seq-len 32
            --checkpoint-every 7 --keep-last 2 --probe-every 50 --log-every 5 --cache "$cache")
pre_args=("${pre_common[@]}" --steps "$steps" --resume)

if (( kills > 0 )); then
  echo "pretrain: uninterrupted run"
  t0=$(date +%s%N)
  $nsparse "${pre_args[@]}" --out "$work/pre-ref" >"$work/ref.out" 2>&1 || { echo "error: the reference run failed, see $work/ref.out" >&2; exit 1; }
  # Kill windows scale with the reference run's wall time T (start-up included), so that on any machine
  # the killed runs together do less than the whole run and every asked-for kill lands before the end.
  ref_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  odd_hi=$(( ref_ms / kills )); (( odd_hi > 6000 )) && odd_hi=6000; (( odd_hi < 400 )) && odd_hi=400
  even_hi=$(( ref_ms / (2 * kills) )); (( even_hi > 1500 )) && even_hi=1500; (( even_hi < 100 )) && even_hi=100
  echo "pretrain: reference run ${ref_ms} ms; kills at 0.2-$((odd_hi))ms after a start or 0-${even_hi} ms after a new checkpoint"
  done_kills=0
  for ((i = 1; i <= kills; i++)); do
    # Odd kills: anywhere from the start-up on (at most T/kills after the start). Even kills: once this run
    # has written a checkpoint of its own, somewhere in the training, probing and checkpoint writes that follow.
    newest=$( (ls "$work/pre-trial/checkpoints" 2>/dev/null || true) | grep -E '^step-[0-9]+$' | tail -1 || true)
    if (( i % 2 )); then ready=true lo=200 hi=$odd_hi
    else ready="[[ \$( (ls '$work/pre-trial/checkpoints' 2>/dev/null || true) | grep -E '^step-[0-9]+\$' | tail -1) != '$newest' ]]" lo=0 hi=$even_hi
    fi
    if kill_once "$ready" "$lo" "$hi" $nsparse "${pre_args[@]}" --out "$work/pre-trial"; then done_kills=$((done_kills + 1)); else break; fi
  done
  resumes=$(grep -c '^resumed from' "$work/trial.out" || true)
  echo "pretrain: $resumes of the killed runs had resumed from a checkpoint before their kill"
  echo "pretrain: $done_kills kills; finishing with --resume"
  $nsparse "${pre_args[@]}" --out "$work/pre-trial" >>"$work/trial.out" 2>&1 || { echo "  the final resume failed (see $work/trial.out)"; failed=1; }
  last=$(printf 'checkpoints/step-%07d' "$steps")
  for f in "$last/model.safetensors" "$last/optimizer.safetensors" "$last/trainer_state.json" train_log.csv probe.csv probe_layers.csv probe.jsonl; do
    same "$work/pre-ref" "$work/pre-trial" "$f" || failed=1
  done
  steps_seen=$(cut -d, -f1 "$work/pre-trial/train_log.csv" | tail -n +2 | tr '\n' ' ')
  awk -F, 'NR>1{ if ($1 <= prev) exit 1; prev = $1 }' "$work/pre-trial/train_log.csv" || { echo "  train_log.csv steps not strictly increasing: $steps_seen"; failed=1; }
  (( done_kills == kills )) || { echo "  only $done_kills of $kills kills landed before the run finished: raise --steps"; failed=1; }
  echo "pretrain: $done_kills SIGKILLs, $( ((failed)) && echo DIFFERENT || echo identical )"
fi

# Two writers on one --out: the second (fresh or --resume) is refused at once naming the holder; the first
# finishes alone, its train_log.csv steps strictly increasing.
echo "two writers: a second pretrain and a --resume against a live run"
$nsparse "${pre_common[@]}" --steps 300 --out "$work/two" >"$work/two-first.out" 2>&1 &
first=$!
while kill -0 "$first" 2>/dev/null && [[ ! -f "$work/two/.nsparse.lock.holder" ]]; do sleep 0.05; done
for extra in "" "--resume"; do
  code=0 t0=$(date +%s%N)
  $nsparse "${pre_common[@]}" $extra --steps 300 --out "$work/two" >"$work/two-second.out" 2>&1 || code=$?
  if [[ $code -eq 2 ]] && grep -q "^error: .* is in use by another nsparse process (pid $first, command 'pretrain'" "$work/two-second.out"; then
    echo "  refused in $(( ($(date +%s%N) - t0) / 1000000 )) ms${extra:+ ($extra)}: $(grep '^error:' "$work/two-second.out")"
  else
    echo "  NOT refused as expected (exit $code): $(tail -2 "$work/two-second.out")"; failed=1
  fi
done
wait "$first" || { echo "  the first writer failed (see $work/two-first.out)"; failed=1; }
awk -F, 'NR>1{ if ($1 <= prev) exit 1; prev = $1 }' "$work/two/train_log.csv" || { echo "  train_log.csv steps not strictly increasing"; failed=1; }

if (( study_kills > 0 )); then
  # The study fine-tunes a pre-trained checkpoint: a short one of its own (not killed).
  base=$(printf '%s/study-base/checkpoints/step-%07d' "$work" 40)
  $nsparse "${pre_common[@]}" --steps 40 --out "$work/study-base" >"$work/base.out" 2>&1 || { echo "error: the base pre-training failed, see $work/base.out" >&2; exit 1; }
  st_args=(study essential --threads 1 --checkpoint "$base" --tasks antonym --levels 0.3,0.5,0.7,0.9 --seeds 2 --epochs 1
           --max-examples 200 --max-steps 30 --batch-size 8 --max-seq-len 32)
  echo "study essential: uninterrupted run"
  $nsparse "${st_args[@]}" --out "$work/st-ref" >"$work/st-ref.out" 2>&1 || { echo "error: the reference study failed, see $work/st-ref.out" >&2; exit 1; }
  study_failed=0 done_kills=0
  for ((i = 1; i <= study_kills; i++)); do
    have=$( (find "$work/st-trial/cells" -name '*.json' 2>/dev/null || true) | wc -l)
    # Wait until this run has finished a cell of its own, then kill somewhere in the cells that follow.
    ready="[[ \$(find '$work/st-trial/cells' -name '*.json' 2>/dev/null | wc -l) -gt $have ]]"
    if kill_once "$ready" 0 700 $nsparse "${st_args[@]}" --out "$work/st-trial"; then done_kills=$((done_kills + 1)); else break; fi
  done
  echo "study essential: $done_kills kills; rerunning to the end"
  $nsparse "${st_args[@]}" --out "$work/st-trial" >>"$work/trial.out" 2>&1 || { echo "  the final rerun failed (see $work/trial.out)"; study_failed=1; }
  for f in summary.csv cells.csv $(cd "$work/st-ref" && find cells -name '*.json' | sort); do
    same "$work/st-ref" "$work/st-trial" "$f" || study_failed=1
  done
  (( done_kills == study_kills )) || { echo "  only $done_kills of $study_kills kills landed before the study finished"; study_failed=1; }
  echo "study essential: $done_kills SIGKILLs, $( ((study_failed)) && echo DIFFERENT || echo identical )"
  if (( study_failed )); then failed=1; fi
fi

if (( failed )); then echo "crash trial FAILED (work kept in $work)"; exit 1; fi
echo "crash trial passed"
(( keep_work )) || rm -rf "$work"
