#!/usr/bin/env bash
# DePT ImageNet (all classes) source run for cross-dataset / domain generalisation:
#   scripts/dept/xd_train.sh BASE [SEED]     (BASE: CoOp | CoCoOp | KgCoOp | MaPLe)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
usage_check 1 2 "$0 BASE [SEED]" "$@"
dept_setup "$1"
shift
xd_train "$@"
