#!/usr/bin/env bash
# The prepared GPU check (issue 14, item 6): fits in 10 minutes on one GPU and ends with one summary
# block. Run from the repository root with medrobust installed WITH the test and ray extras (the test
# suite's Ray files fail on import without Ray, by design):
#
#   pip install -e ".[test,ray]"
#   MEDROBUST_DATA=../shared/data bash benchmarks/gpu_check.sh [OUT_DIR]
#
# 1. the device name (nvidia-smi and torch);
# 2. the GPU-marked tests (pytest -m gpu; a test file that cannot be imported, e.g. without the ray
#    extra, is reported in the summary and does not stop the GPU tests);
# 3. PGD-100 images/s at 128 px on ResNet18 and MAIL-RN18, and the ratio to 100 x forward+backward;
#    what channels-last memory buys on each (forward+backward, contiguous over channels-last);
# 4. one training epoch of MAIL-RN18 at 128 px on D12 (PneumoniaMNIST), fp32 and bf16 autocast
#    (TrainConfig(amp="bf16"), what `medrobust train --amp bf16` runs);
# 5. MAIL's training step over ResNet18's (benchmarks/mail_step_ratio.py --device cuda), MAIL-RN18
#    and Robust-MAIL, at 28 px (batch 32) and 128 px (batch 16);
# 6. batched EOT: EOT-20 time / (20 x forward+backward of the batch), looped and batched
#    (benchmarks/eot_batching.py --device cuda: D12, batch 32, 28 px);
# 7. with the time left: MAIL-RN18 trained at 128 px on D12 for as many epochs as fit (recipe medmnist,
#    batch 128), PGD-10 under both presets into OUT_DIR/results, published to OUT_DIR/published.
#
# Time plan (GPU_CHECK_BUDGET_S, default 600 s for the whole check): steps 2-6 each stop at their own
# cap (150, 120, 2 x 120, 2 x 60, 60 s) and never run past the budget; step 7 takes what is left,
# less 120 s for evaluation, publishing and loading the data.
#
# Without a CUDA GPU it stops at once with exit code 2 (one line) and runs nothing.
# GPU_CHECK_DRY_RUN=1 runs every step on the CPU at toy sizes (28-32 px, a few dozen images, one
# epoch, 32 test points): a check of this script, NOT a measurement.
set -uo pipefail
cd "$(dirname "$0")/.."
BUDGET=${GPU_CHECK_BUDGET_S:-600}  # the whole check, in seconds
OUT=${1:-gpu-check-$(date +%Y%m%d-%H%M%S)}
DATA=${MEDROBUST_DATA:-../shared/data}
export MEDROBUST_DATA=$DATA
DRY=${GPU_CHECK_DRY_RUN:-0}
START=$SECONDS
left() { echo $(( BUDGET - (SECONDS - START) )); }
# cap N: a step's timeout, N seconds or what is left of the budget (less 10 s), whichever is less
cap() { local l=$(( $(left) - 10 )); echo $(( $1 < l ? $1 : l )); }
SUMMARY=()
note() { SUMMARY+=("$1"); echo "gpu_check: $1" >&2; }

if [[ $DRY != 1 ]]; then
  if ! python - <<'EOF'
import sys
import torch
sys.exit(0 if torch.cuda.is_available() else 1)
EOF
  then
    echo "gpu_check: no CUDA GPU visible (torch.cuda.is_available() is False; nvidia-smi: $(command -v nvidia-smi >/dev/null && nvidia-smi -L 2>&1 | head -1 || echo 'not installed')); this check needs one GPU, nothing was run" >&2
    exit 2
  fi
fi
if [[ ! -f "$DATA/medmnist/pneumoniamnist.npz" ]]; then
  echo "gpu_check: D12 missing: $DATA/medmnist/pneumoniamnist.npz (set MEDROBUST_DATA); nothing was run" >&2
  exit 2
fi
mkdir -p "$OUT"
if [[ $DRY == 1 ]]; then
  GPU=cpu
  note "DRY RUN (GPU_CHECK_DRY_RUN=1): every step on the CPU at toy sizes; checks the script, measures nothing"
else
  GPU=cuda
fi

# step NAME CAP LOG PREFIX KEEP CMD...: run CMD under timeout CAP (cut to the budget), its stdout to
# LOG's .out and its stderr to LOG, and note, with PREFIX, each stdout line that matches the regex
# KEEP; or one line when it fails or times out; skipped when the budget is spent
step() {
  local name=$1 limit log=$3 prefix=$4 keep=$5 rc line
  limit=$(cap "$2"); shift 5
  if (( limit < 5 )); then note "$name: skipped (budget spent: $(left) s left)"; return; fi
  timeout "$limit" "$@" > "${log%.log}.out" 2> "$log"; rc=$?
  while IFS= read -r line; do
    if [[ -n $line && $line =~ $keep ]]; then note "$prefix$line"; fi
  done < "${log%.log}.out"
  if (( rc == 124 )); then note "$name: stopped after $limit s (see $log)"
  elif (( rc != 0 )); then note "$name: FAILED (exit $rc; see $log)"; fi
}

# 1. device
DEVICE=$(python -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu (dry run)')")
note "device: $DEVICE; torch $(python -c 'import torch; print(torch.__version__, torch.version.cuda)'); $(date -u +%Y-%m-%dT%H:%MZ)"

# 2. GPU-marked tests (at most 150 s). A file that fails to import (e.g. tests/test_grid_ray.py
# without the ray extra) must not keep the GPU tests from running: it is named in the summary.
limit=$(cap 150)
timeout "$limit" python -m pytest -q -m gpu -p no:cacheprovider --continue-on-collection-errors \
    > "$OUT/gpu_tests.log" 2>&1
rc=$?
broken=$(sed -n 's/^_* ERROR collecting \(.*[^ _]\) _*$/\1/p' "$OUT/gpu_tests.log" | tr '\n' ' ' | sed 's/ $//')
last=$(tail -n 1 "$OUT/gpu_tests.log")
case $rc in
  0) note "gpu tests: $last" ;;
  5) note "gpu tests: none carry the gpu marker yet (pytest -m gpu collected nothing)" ;;
  124) note "gpu tests: stopped after $limit s (see $OUT/gpu_tests.log)" ;;
  1) if [[ -n $broken && $last != *failed* ]]; then
       note "gpu tests: $last; the errors: files that could not be imported, their tests (GPU or not) did not run: $broken (missing extra? pip install -e \".[test,ray]\"; see $OUT/gpu_tests.log)"
     else
       note "gpu tests: FAILED: $last${broken:+; could not be imported: $broken} (see $OUT/gpu_tests.log)"
     fi ;;
  *) note "gpu tests: FAILED (exit $rc): $last (see $OUT/gpu_tests.log)" ;;
esac

# 3. PGD-100 throughput (at most 120 s)
step pgd 120 "$OUT/pgd.log" "" . python benchmarks/gpu_check.py pgd

# 4. one training epoch, fp32 then bf16 (at most 120 s each)
for precision in fp32 bf16; do
  step "train-epoch $precision" 120 "$OUT/train_$precision.log" "" . \
      python benchmarks/gpu_check.py train-epoch --precision $precision
done

# 5. MAIL's training step / ResNet18's, at 28 px and 128 px (at most 60 s each)
if [[ $DRY == 1 ]]; then STEP28=(--batch 4 --repeats 1); STEP128=(--batch 2 --repeats 1)
else STEP28=(--batch 32 --repeats 10); STEP128=(--batch 16 --repeats 10); fi
# (the summary keeps the ratio lines, which carry both ms/step; every line is in mail_step_*.out)
for size in 28 128; do
  [[ $size == 28 ]] && sizing=("${STEP28[@]}") || sizing=("${STEP128[@]}")
  step "mail step $size px" 60 "$OUT/mail_step_$size.log" "mail step: " '^ratio ' \
      python benchmarks/mail_step_ratio.py --device $GPU --model mail_rn18,robust_mail --image-size $size \
      "${sizing[@]}"
done

# 6. batched EOT on the device (at most 60 s)
if [[ $DRY == 1 ]]; then EOT=(--batch 4 --draws 4 --repeats 1); else EOT=(--repeats 5); fi
step "eot batching" 60 "$OUT/eot_batching.log" "eot batching: " . python benchmarks/eot_batching.py --device $GPU \
    --data-root "$DATA" "${EOT[@]}"

# 7. with the time left: train for as many epochs as fit, then PGD-10 under both presets, then publish
EPOCH_RATE=$(printf '%s\n' "${SUMMARY[@]}" | sed -n 's/^train-epoch mail_rn18 fp32[^:]*: \([0-9.]*\) images\/s.*/\1/p' | head -1)
RESERVE=120  # evaluation, publishing and loading the data
if [[ -n $EPOCH_RATE ]]; then
  EPOCHS=$(python -c "import math; r=float('$EPOCH_RATE'); print(max(0, math.floor(($(left) - $RESERVE) / (1.3 * 4708 / r))))")
  [[ $DRY == 1 ]] && EPOCHS=1
else
  EPOCHS=0
fi
LIMIT=$(( $(left) - 20 ))
if (( EPOCHS >= 1 && LIMIT >= 30 )); then
  SIZE=128; SUBSET=(); [[ $DRY == 1 ]] && { SIZE=28; SUBSET=(--n-train 64 --n-val 32 --n-test 32); }
  timeout "$LIMIT" medrobust run --model mail_rn18 --dataset d12 --attacks pgd-10 --preset paper,standard \
      --image-size $SIZE --epochs "$EPOCHS" --recipe medmnist --batch-size 128 --no-augment "${SUBSET[@]}" \
      --device $GPU --quiet --results-dir "$OUT/results" --data-root "$DATA" > "$OUT/mail_run.log" 2>&1
  rc=$?
  if (( rc == 0 )); then
    # the result lines only (not the progress lines): "clean (...): 62.50% (95% CI ...)"
    results=$(grep -E '^ *(clean|pgd-10) \([^)]*\): [0-9.]+%' "$OUT/mail_run.log" | sed 's/^ *//' | paste -sd '|' | sed 's/|/ | /g')
    note "mail_rn18 at ${SIZE} px on D12, ${EPOCHS} epoch(s) (medmnist recipe, batch 128): $results"
    medrobust leaderboard publish --results-dir "$OUT/results" --out "$OUT/published" --source "$DEVICE, benchmarks/gpu_check.sh" > "$OUT/publish.log" 2>&1 \
      && note "published: $OUT/published (leaderboard.md, index.html; store $OUT/results/results.sqlite)" \
      || note "publish FAILED (see $OUT/publish.log)"
  else
    note "mail_rn18 training + PGD-10: FAILED or out of time (exit $rc; see $OUT/mail_run.log)"
  fi
else
  note "mail_rn18 training + PGD-10: skipped ($(left) s left, epoch rate '${EPOCH_RATE:-unknown}' images/s)"
fi

{
  echo "==================== medrobust GPU check ===================="
  printf '%s\n' "${SUMMARY[@]}"
  echo "total: $(( SECONDS - START )) s of a ${BUDGET} s budget; logs in $OUT/"
  echo "============================================================="
} | tee "$OUT/summary.txt"
