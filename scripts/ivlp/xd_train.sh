#!/usr/bin/env bash
# IVLP cross-dataset / domain generalisation source run on ImageNet (all classes): scripts/ivlp/xd_train.sh [SEED]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
usage_check 0 1 "$0 [SEED]" "$@"
xd_train "$@"
