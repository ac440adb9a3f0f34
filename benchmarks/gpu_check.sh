#!/usr/bin/env bash
# The prepared GPU check (issue 14, item 6): fits in 10 minutes on one GPU and ends with one summary
# block. Run from the repository root with medrobust installed (pip install -e ".[test]"):
#
#   MEDROBUST_DATA=../shared/data bash benchmarks/gpu_check.sh [OUT_DIR]
#
# 1. the device name (nvidia-smi and torch);
# 2. the GPU-marked tests (pytest -m gpu);
# 3. PGD-100 images/s at 128 px on ResNet18 and MAIL-RN18, and the ratio to 100 x forward+backward;
#    what channels-last memory buys on each (forward+backward, contiguous over channels-last);
# 4. one training epoch of MAIL-RN18 at 128 px on D12 (PneumoniaMNIST), fp32 and bf16 autocast
#    (TrainConfig(amp="bf16"), what `medrobust train --amp bf16` runs);
# 5. with the time left: MAIL-RN18 trained at 128 px on D12 for as many epochs as fit (recipe medmnist,
#    batch 128), PGD-10 under both presets into OUT_DIR/results, published to OUT_DIR/published.
#
# Without a CUDA GPU it stops at once with exit code 2 and runs nothing. GPU_CHECK_DRY_RUN=1 runs the
# Python parts on the CPU at toy sizes (a check of the script itself, not a measurement).
set -uo pipefail
cd "$(dirname "$0")/.."
BUDGET=${GPU_CHECK_BUDGET_S:-600}  # the whole check, in seconds
OUT=${1:-gpu-check-$(date +%Y%m%d-%H%M%S)}
DATA=${MEDROBUST_DATA:-../shared/data}
export MEDROBUST_DATA=$DATA
START=$SECONDS
left() { echo $(( BUDGET - (SECONDS - START) )); }
SUMMARY=()
note() { SUMMARY+=("$1"); echo "gpu_check: $1" >&2; }

if [[ ${GPU_CHECK_DRY_RUN:-0} != 1 ]]; then
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

# 1. device
DEVICE=$(python -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu (dry run)')")
note "device: $DEVICE; torch $(python -c 'import torch; print(torch.__version__, torch.version.cuda)'); $(date -u +%Y-%m-%dT%H:%MZ)"

# 2. GPU-marked tests (at most 150 s)
timeout 150 python -m pytest -q -m gpu -p no:cacheprovider > "$OUT/gpu_tests.log" 2>&1
rc=$?
case $rc in
  0) note "gpu tests: $(tail -n 1 "$OUT/gpu_tests.log")" ;;
  5) note "gpu tests: none carry the gpu marker yet (pytest -m gpu collected nothing)" ;;
  124) note "gpu tests: stopped after 150 s (see $OUT/gpu_tests.log)" ;;
  *) note "gpu tests: FAILED (exit $rc): $(tail -n 1 "$OUT/gpu_tests.log") (see $OUT/gpu_tests.log)" ;;
esac

# 3. PGD-100 throughput (at most 120 s)
while IFS= read -r line; do note "$line"; done < <(timeout 120 python benchmarks/gpu_check.py pgd 2> "$OUT/pgd.log" || echo "pgd: FAILED or timed out (see $OUT/pgd.log)")

# 4. one training epoch, fp32 then bf16 (at most 120 s each)
for precision in fp32 bf16; do
  while IFS= read -r line; do note "$line"; done < <(timeout 120 python benchmarks/gpu_check.py train-epoch --precision $precision 2> "$OUT/train_$precision.log" || echo "train-epoch $precision: FAILED or timed out (see $OUT/train_$precision.log)")
done

# 5. with the time left: train for as many epochs as fit, then PGD-10 under both presets, then publish
EPOCH_RATE=$(printf '%s\n' "${SUMMARY[@]}" | sed -n 's/^train-epoch mail_rn18 fp32[^:]*: \([0-9.]*\) images\/s.*/\1/p' | head -1)
RESERVE=120  # evaluation, publishing and loading the data
if [[ -n $EPOCH_RATE ]]; then
  EPOCHS=$(python -c "import math; r=float('$EPOCH_RATE'); print(max(0, math.floor(($(left) - $RESERVE) / (1.3 * 4708 / r))))")
  [[ ${GPU_CHECK_DRY_RUN:-0} == 1 ]] && EPOCHS=1
else
  EPOCHS=0
fi
if (( EPOCHS >= 1 )); then
  SIZE=128; NTRAIN=(); [[ ${GPU_CHECK_DRY_RUN:-0} == 1 ]] && { SIZE=28; NTRAIN=(--n-train 64 --n-test 32); }
  timeout $(( $(left) - 20 )) medrobust run --model mail_rn18 --dataset d12 --attacks pgd-10 --preset paper,standard \
      --image-size $SIZE --epochs "$EPOCHS" --recipe medmnist --batch-size 128 --no-augment "${NTRAIN[@]}" \
      --device "$([[ ${GPU_CHECK_DRY_RUN:-0} == 1 ]] && echo cpu || echo cuda)" --quiet --results-dir "$OUT/results" \
      --data-root "$DATA" > "$OUT/mail_run.log" 2>&1
  rc=$?
  if (( rc == 0 )); then
    note "mail_rn18 at ${SIZE} px on D12, ${EPOCHS} epochs (medmnist recipe, batch 128): $(grep -E 'clean \(|pgd-10 \(' "$OUT/mail_run.log" | sed 's/^ *//' | tr '\n' ';' | sed 's/;$//')"
    medrobust leaderboard publish --results-dir "$OUT/results" --out "$OUT/published" --source "$DEVICE, benchmarks/gpu_check.sh" > "$OUT/publish.log" 2>&1 \
      && note "published: $OUT/published (store $OUT/results/results.sqlite)" \
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
