#!/usr/bin/env bash
# VPT + Nemesis base-to-new, training on the base classes:
#   scripts/vpt_nemesis/base2new_train.sh DATASET ALPHA NT NP CW BETA [SEED]   (no SEED: $SEEDS)
# Output: $OUTPUT_ROOT/base2new/train_base/<DATASET>/<shots>/VPTNemesis/Beta-<BETA>/<CFG>/<name>/seed<S>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
usage_check 6 7 "$0 DATASET ALPHA NT NP CW BETA [SEED]" "$@"
nemesis_host "$2" "$3" "$4" "$5" "$6"
b2n_train "$1" "${7:-}"
