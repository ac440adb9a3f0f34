#!/usr/bin/env bash
# The commands behind the published tables in leaderboards/ (CPU budget; see leaderboards/README.md).
# Each section is a grid file in leaderboards/grids/ (its comments say the budget and why): models,
# defenses, datasets, attacks per preset, training settings and test points. Every step is
# resumable: rerunning skips finished cells and reuses trained checkpoints (the zoo keys are those
# of the `medrobust run` commands this script ran before, so their checkpoints are found).
# `medrobust grid plan leaderboards/grids/<section>.toml` prints a section's work before running it.
# Usage: bash leaderboards/reproduce_cpu.sh <results-dir> <section>   (section: all, or one below)
# To change a budget (epochs, test points, the defenses' training attack), edit a copy of the grid file.
set -euo pipefail
RESULTS=${1:-results-cpu}
SECTION=${2:-all}
DATA=${MEDROBUST_DATA:-../shared/data}
SECTIONS=(resnet18-grid resnet18-grid-small table2 mail-sweep table2-short robust-d14 defenses-d14
          robust-d12 defenses-d12 robust-full defenses-v2 robust-v2 anchor publish)
if [[ $SECTION != all && " ${SECTIONS[*]} " != *" $SECTION "* ]]; then
  echo "error: unknown section '$SECTION' (allowed: all ${SECTIONS[*]})" >&2
  exit 2
fi

run() { echo "+ medrobust $*" >&2; medrobust "$@"; }
on() { [[ $SECTION == all || $SECTION == "$1" ]]; }

if on resnet18-grid; then run grid run leaderboards/grids/resnet18-grid.toml --results-dir "$RESULTS" --data-root "$DATA"; fi
if on resnet18-grid-small; then run grid run leaderboards/grids/resnet18-grid-small.toml --results-dir "$RESULTS" --data-root "$DATA"; fi
if on table2; then run grid run leaderboards/grids/table2.toml --results-dir "$RESULTS" --data-root "$DATA"; fi
if on mail-sweep; then run grid run leaderboards/grids/mail-sweep.toml --results-dir "$RESULTS" --data-root "$DATA"; fi
if on table2-short; then run grid run leaderboards/grids/table2-short.toml --results-dir "$RESULTS" --data-root "$DATA"; fi
if on robust-d14; then run grid run leaderboards/grids/robust-d14.toml --results-dir "$RESULTS" --data-root "$DATA"; fi
if on defenses-d14; then run grid run leaderboards/grids/defenses-d14.toml --results-dir "$RESULTS" --data-root "$DATA"; fi
if on robust-d12; then run grid run leaderboards/grids/robust-d12.toml --results-dir "$RESULTS" --data-root "$DATA"; fi
if on defenses-d12; then run grid run leaderboards/grids/defenses-d12.toml --results-dir "$RESULTS" --data-root "$DATA"; fi
if on robust-full; then run grid run leaderboards/grids/robust-full.toml --results-dir "$RESULTS" --data-root "$DATA"; fi
if on defenses-v2; then run grid run leaderboards/grids/defenses-v2.toml --results-dir "$RESULTS" --data-root "$DATA"; fi
if on robust-v2; then run grid run leaderboards/grids/robust-v2.toml --results-dir "$RESULTS" --data-root "$DATA"; fi
if on anchor; then run grid run leaderboards/grids/anchor.toml --results-dir "$RESULTS" --data-root "$DATA"; fi
if on publish; then run leaderboard publish --results-dir "$RESULTS" --out leaderboards; fi
