#!/usr/bin/env bash
# DePT base-to-new evaluation on the new classes (ITM head only; load epoch = config MAX_EPOCH or LOAD_EPOCH):
#   scripts/dept/base2new_test.sh BASE DATASET [SEED]     (BASE: CoOp | CoCoOp | KgCoOp | MaPLe)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
usage_check 2 3 "$0 BASE DATASET [SEED]" "$@"
dept_setup "$1"
shift
b2n_test "$@"
