#!/usr/bin/env bash
# VPT base-to-new, training on the base classes: scripts/vpt/base2new_train.sh DATASET [SEED]  (no SEED: $SEEDS)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
usage_check 1 2 "$0 DATASET [SEED]" "$@"
b2n_train "$@"
