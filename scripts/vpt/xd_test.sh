#!/usr/bin/env bash
# VPT cross-dataset / domain generalisation target: scripts/vpt/xd_test.sh DATASET [SEED]  (ImageNet model)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
usage_check 1 2 "$0 DATASET [SEED]" "$@"
xd_test "$@"
