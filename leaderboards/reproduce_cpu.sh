#!/usr/bin/env bash
# The commands behind the published tables in leaderboards/ (CPU budget; see leaderboards/README.md).
# Every step is resumable: rerunning skips finished cells and reuses trained checkpoints.
# Usage: bash leaderboards/reproduce_cpu.sh <results-dir> <section>
set -euo pipefail
RESULTS=${1:-results-cpu}
SECTION=${2:-all}
DATA=${MEDROBUST_DATA:-../shared/data}
# The shared CPU budget: native 28 px MedMNIST images, batch 32, no augmentation, seed 0; BUDGET
# trains with the paper recipe (SGD 1e-3, momentum 0.9), FAST with SGD 1e-2 (see below).
COMMON=(--image-size 28 --batch-size 32 --no-augment --seed 0 --data-root "$DATA"
        --results-dir "$RESULTS" --quiet)
BUDGET=(--recipe paper "${COMMON[@]}")
EPOCHS=${EPOCHS:-20}

run() { echo "+ medrobust $*" >&2; medrobust "$@"; }

if [[ $SECTION == all || $SECTION == resnet18-grid ]]; then
  # Issue 5: the paper's full attack set under both presets, and the Fig. 6 sweep.
  run run --model resnet18 --dataset d12 --attacks all --preset paper,standard --epochs $EPOCHS \
      --n-test 200 "${BUDGET[@]}"
  run sweep --model resnet18 --dataset d12 --attack pgd-100 --eps 0.01:0.1:10 --preset paper \
      --epochs $EPOCHS --n-test 200 "${BUDGET[@]}"
fi

if [[ $SECTION == all || $SECTION == resnet18-grid-small ]]; then
  # Issue 5: every column of the paper's set, both presets, including the two surrogate-transfer attacks
  # (the surrogate, a ResNet101, is trained at the same budget), at the budget of
  # benchmarks/attack_overhead.py: 1000 training images, 3 epochs, 40 test points, Square at 1000 queries.
  run run --model resnet18 --dataset d12 \
      --attacks pgd-10,pgd-20,pgd-50,pgd-100,bim-10,mim-10,autoattack,square-1000,square-surrogate-1000,aa-surrogate \
      --preset paper,standard --epochs 3 --n-train 1000 --n-test 40 "${BUDGET[@]}"
fi

# MAIL does not leave the majority class at the paper's lr (SGD 1e-3) within a CPU budget (measured:
# 6 epochs on 1000 D12 images), so the MAIL tables use the 'fast' recipe (SGD 1e-2) for every model.
FAST=(--recipe fast "${COMMON[@]}")

table2() {  # Issue 4: ResNet18 and MAIL-RN18, one budget (the extra run options), full test splits.
  local datasets=$1; shift
  for dataset in $datasets; do
    for model in resnet18 mail_rn18; do
      run run --model $model --dataset $dataset --attacks pgd-10 --preset paper --no-checks \
          "${FAST[@]}" "$@"
    done
  done
}

if [[ $SECTION == all || $SECTION == table2 ]]; then
  # D12, D13, D14 at the long budget, and one control line: MAIL-RN18 on D12 under the paper's
  # recipe with the same epochs.
  table2 "${TABLE2_DATASETS:-d14 d13 d12}" --epochs $EPOCHS
  if [[ " ${TABLE2_DATASETS:-d12} " == *" d12 "* ]]; then
    run run --model mail_rn18 --dataset d12 --attacks pgd-10 --preset paper --no-checks \
        --epochs $EPOCHS "${BUDGET[@]}"
  fi
fi

if [[ $SECTION == all || $SECTION == mail-sweep ]]; then
  # Fig. 6 for MAIL on the budget of the robust tables (1000 D12 training images, 6 epochs).
  run sweep --model mail_rn18 --dataset d12 --attack pgd-100 --eps 0.01:0.1:10 --preset paper \
      --epochs 6 --n-train 1000 --n-test 200 "${FAST[@]}"
fi

if [[ $SECTION == all || $SECTION == table2-short ]]; then
  # Issue 4, a second, shorter budget that every pair finishes on a CPU: 1000 training images
  # (all of them where the split is smaller), 6 epochs, recipe 'fast', full test splits.
  table2 "d14 d13 d12" --epochs 6 --n-train 1000
fi

ROBUST_EPOCHS=${ROBUST_EPOCHS:-10}
ATTACKS=${ATTACKS:-pgd-10,pgd-20,pgd-100,bim-10,mim-10,square-1000,autoattack}
# Randomized defenses are attacked twice per white-box attack (single draw, and EOT over 20 draws per gradient),
# which multiplies their cost: DEFENSE_ATTACKS and DEFENSE_TEST trim the set and the test subset for CPU budgets.
DEFENSE_ATTACKS=${DEFENSE_ATTACKS:-$ATTACKS}
# The training attack of every adversarially trained model in the robust and defense tables (the paper: PGD-10,
# step 1/255). ADV="--adv-steps 3 --adv-step 2/255" is the cheaper CPU budget of the published defense table.
read -r -a ADV <<< "${ADV:---adv-steps 10 --adv-step 1/255}"
robust_table() {  # $1 dataset, then extra run options (training and test subsets)
  local dataset=$1; shift
  # Issue 6: MAIL (standard training) and Robust-MAIL (PGD adversarial training, Alg. 2), one budget.
  run run --model mail_rn18 --dataset "$dataset" --attacks $ATTACKS --preset paper \
      --epochs $ROBUST_EPOCHS "${FAST[@]}" "$@"
  run run --model robust_mail --dataset "$dataset" --adversarial "${ADV[@]}" --attacks $ATTACKS \
      --preset paper --epochs $ROBUST_EPOCHS "${FAST[@]}" "$@"
  # Table 5 (RPAN ablation), adversarially trained alike, PGD-10 under both protocols.
  for variant in robust_mail-no-rpan robust_mail-rpf-only robust_mail-man-only; do
    run run --model $variant --dataset "$dataset" --adversarial "${ADV[@]}" --attacks pgd-10 \
        --preset paper --epochs $ROBUST_EPOCHS "${FAST[@]}" "$@"
  done
}
defense_table() {  # Issue 7: the six defenses on MAIL-RN18, each with its own recipe, one budget.
  local dataset=$1; shift
  for defense in ${DEFENSES:-pni dbn learn2perturb rpf cap ctrw}; do
    run run --model mail_rn18 --defense $defense --dataset "$dataset" --attacks $DEFENSE_ATTACKS \
        --preset paper "${ADV[@]}" --epochs $ROBUST_EPOCHS "${FAST[@]}" "$@"
  done
}

# D12: 1000 training images and the first TEST test points (default 200); D14: all 546 training images,
# and the first TEST test points when TEST is set (else all 156). The same subsets for the robust and defense tables.
D12=(--n-train 1000 --n-test ${TEST:-200})
D14=(${TEST:+--n-test $TEST})
if [[ $SECTION == all || $SECTION == robust-d14 ]]; then robust_table d14 "${D14[@]}"; fi
if [[ $SECTION == all || $SECTION == defenses-d14 ]]; then defense_table d14 "${D14[@]}"; fi
if [[ $SECTION == all || $SECTION == robust-d12 ]]; then robust_table d12 "${D12[@]}"; fi
if [[ $SECTION == all || $SECTION == defenses-d12 ]]; then defense_table d12 "${D12[@]}"; fi

if [[ $SECTION == all || $SECTION == robust-full ]]; then
  # Issue 6: every attack of the paper's robustness table on Robust-MAIL, single draw and EOT (AutoAttack's
  # EOT counterpart is autoattack-rand), and the same set on MAIL, at the defense budget (PGD-3 adversarial
  # training), first 40 test points of D12 (1000 training images) and of D14 (all 546).
  FULL=pgd-10,pgd-20,pgd-100,bim-10,mim-10,square-1000,autoattack
  for dataset in ${FULL_DATASETS:-d12 d14}; do
    subset=(--n-test 40)
    if [[ $dataset == d12 ]]; then subset+=(--n-train 1000); fi
    run run --model robust_mail --dataset "$dataset" --adversarial --adv-steps 3 --adv-step 2/255 \
        --attacks $FULL,autoattack-rand --preset paper --epochs 6 "${FAST[@]}" "${subset[@]}"
    run run --model mail_rn18 --dataset "$dataset" --attacks $FULL --preset paper --epochs 6 \
        "${FAST[@]}" "${subset[@]}"
  done
fi

if [[ $SECTION == all || $SECTION == defenses-v2 ]]; then
  # Issue 12, item 4: the six defenses on MAIL-RN18, D12, re-trained with today's code (selection by
  # validation AUC, BatchNorm settled, held draws re-drawn) at a budget where the undefended MAIL-RN18
  # (74% clean, AUC 0.84) and ResNet18 (77%, AUC 0.89) learn: 1,600 training images, 4 epochs, recipe
  # medmnist (Adam 1e-3), batch 32, 28 px; training attack PGD-3, eps 4/255, step 2/255; first 100 test
  # points. Attacks: PGD-10 and MIM-10 (paper preset), PGD-20 (standard preset); randomized models get
  # both protocols (single draw, and EOT over 20 draws per gradient).
  V2=(--recipe medmnist --batch-size 32 --image-size 28 --no-augment --seed 0 --n-train 1600 --epochs 4
      --n-test 100 --data-root "$DATA" --results-dir "$RESULTS" --quiet)
  for model in mail_rn18 resnet18; do
    run run --model $model --dataset d12 --attacks pgd-10,mim-10 --preset paper "${V2[@]}"
    run run --model $model --dataset d12 --attacks pgd-20 --preset standard "${V2[@]}"
  done
  for defense in ${DEFENSES:-pni rpf ctrw learn2perturb dbn cap}; do
    run run --model mail_rn18 --defense $defense --dataset d12 --attacks pgd-10,mim-10 --preset paper \
        --adv-steps 3 --adv-step 2/255 "${V2[@]}"
    run run --model mail_rn18 --defense $defense --dataset d12 --attacks pgd-20 --preset standard \
        --adv-steps 3 --adv-step 2/255 "${V2[@]}"
  done
fi

if [[ $SECTION == all || $SECTION == robust-v2 ]]; then
  # Issue 16, item 4: Robust-MAIL with the paper's MAN (Eqs. 21-26) and with the notebook's
  # (--model-option man=code), adversarially trained (Alg. 2, PGD-3 as above) and, as a control,
  # standard-trained; then the Table 5 ablation, all at the defense-v2 budget above.
  V2=(--recipe medmnist --batch-size 32 --image-size 28 --no-augment --seed 0 --n-train 1600 --epochs 4
      --n-test 100 --data-root "$DATA" --results-dir "$RESULTS" --quiet)
  ADV2=(--adversarial --adv-steps 3 --adv-step 2/255)
  pair() {  # model, then options: the paper-preset attacks, then PGD-20 under the standard preset
    local model=$1 attacks=$2; shift 2
    run run --model "$model" --dataset d12 --attacks "$attacks" --preset paper "$@" "${V2[@]}"
    run run --model "$model" --dataset d12 --attacks pgd-20 --preset standard "$@" "${V2[@]}"
  }
  pair robust_mail pgd-10,bim-10,mim-10 "${ADV2[@]}"
  pair robust_mail pgd-10,bim-10,mim-10 --model-option man=code "${ADV2[@]}"
  pair robust_mail pgd-10,mim-10
  for variant in no-rpan rpf-only man-only rpf-man; do
    pair robust_mail-$variant pgd-10,mim-10 "${ADV2[@]}"
  done
  for variant in man-only rpf-man; do
    pair robust_mail-$variant pgd-10,mim-10 --model-option man=code "${ADV2[@]}"
  done
fi

if [[ $SECTION == all || $SECTION == anchor ]]; then
  # Issue 12: MedMNIST v2's own benchmark, ResNet-18 (28) (Yang et al., Sci. Data 2023: Adam 1e-3,
  # x0.1 at epochs 50 and 75 of 100, batch 128, no augmentation), trained through medrobust's train
  # path (selection by validation AUC, BatchNorm settled), then MAIL-RN18 with the same recipe.
  # ANCHOR_EPOCHS=100 is the benchmark's budget; the recipe's milestones scale with it.
  for dataset in ${ANCHOR_DATASETS:-d14 d13 d12}; do
    for model in ${ANCHOR_MODELS:-resnet18 mail_rn18}; do
      run run --model $model --dataset $dataset --attacks pgd-10 --preset standard \
          --recipe medmnist --epochs ${ANCHOR_EPOCHS:-100} --batch-size 128 --image-size 28 --no-augment \
          --seed 0 --data-root "$DATA" --results-dir "$RESULTS" --quiet
    done
  done
fi

if [[ $SECTION == all || $SECTION == publish ]]; then
  run leaderboard publish --results-dir "$RESULTS" --out leaderboards
fi
