#!/usr/bin/env bash
# Zero-shot CLIP: scripts/coop/zeroshot.sh DATASET CFG   (TRAINER=ZeroshotCLIP2 for the prompt ensemble)
# Output: $OUTPUT_ROOT/<TRAINER>/<CFG>/<DATASET>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if [ $# -ne 2 ]; then echo "usage: $0 DATASET CFG" >&2; exit 2; fi
DATASET=$1 CFG=$2 TRAINER="${TRAINER:-ZeroshotCLIP}"
require_data
DIR="$OUTPUT_ROOT/$TRAINER/$CFG/$DATASET"
prepare_run "$DIR" macro_f1 || exit 0
run_child "$PYTHON" "$REPO/train.py" ${FORCE_ARGS[@]+"${FORCE_ARGS[@]}"} --root "$DATA" --trainer "$TRAINER" \
  --dataset-config-file "$REPO/configs/datasets/${DATASET}.yaml" \
  --config-file "$REPO/configs/trainers/CoOp/${CFG}.yaml" --output-dir "$DIR" --eval-only "${EXTRA[@]}"
