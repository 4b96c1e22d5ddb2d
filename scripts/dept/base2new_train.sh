#!/usr/bin/env bash
# DePT base-to-new training on the base classes:
#   scripts/dept/base2new_train.sh BASE DATASET [SEED]     (BASE: CoOp | CoCoOp | KgCoOp | MaPLe)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
usage_check 2 3 "$0 BASE DATASET [SEED]" "$@"
dept_setup "$1"
shift
b2n_train "$@"
