#!/usr/bin/env bash
# IVLP base-to-new, evaluation on the new classes: scripts/ivlp/base2new_test.sh DATASET [SEED]
# Load epoch: LOAD_EPOCH or the config's MAX_EPOCH.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
usage_check 1 2 "$0 DATASET [SEED]" "$@"
b2n_test "$@"
