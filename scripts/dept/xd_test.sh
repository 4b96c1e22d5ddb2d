#!/usr/bin/env bash
# DePT cross-dataset / domain generalisation target (CAT head iff the target shares ImageNet's label space):
#   scripts/dept/xd_test.sh BASE DATASET [SEED]     (BASE: CoOp | CoCoOp | KgCoOp | MaPLe)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
usage_check 2 3 "$0 BASE DATASET [SEED]" "$@"
dept_setup "$1"
shift
xd_test "$@"
