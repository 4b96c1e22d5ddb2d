#!/usr/bin/env bash
# IVLP cross-dataset / domain generalisation target: scripts/ivlp/xd_test.sh DATASET [SEED]  (ImageNet model)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
usage_check 1 2 "$0 DATASET [SEED]" "$@"
xd_test "$@"
