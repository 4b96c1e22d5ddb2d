#!/usr/bin/env bash
# VPT cross-dataset / domain generalisation source run on ImageNet (all classes): scripts/vpt/xd_train.sh [SEED]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
usage_check 0 1 "$0 [SEED]" "$@"
xd_train "$@"
