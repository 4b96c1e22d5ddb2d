#!/usr/bin/env bash
# Domain generalisation: evaluate ImageNet-trained CoOp (16 shots, M=16, end, generic) on DATASET.
# scripts/coop/eval.sh DATASET CFG   (LOAD_EPOCH default 50)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if [ $# -ne 2 ]; then echo "usage: $0 DATASET CFG" >&2; exit 2; fi
DATASET=$1 CFG=$2
require_data
for SEED in $SEEDS; do
  MODEL_DIR="$OUTPUT_ROOT/imagenet/CoOp/${CFG}_16shots/nctx16_cscFalse_ctpend/seed${SEED}"
  DIR="$OUTPUT_ROOT/evaluation/CoOp/${CFG}_16shots/nctx16_cscFalse_ctpend/${DATASET}/seed${SEED}"
  prepare_run "$DIR" macro_f1 || continue
  run_child "$PYTHON" "$REPO/train.py" ${FORCE_ARGS[@]+"${FORCE_ARGS[@]}"} --root "$DATA" --seed "$SEED" --trainer CoOp \
    --dataset-config-file "$REPO/configs/datasets/${DATASET}.yaml" \
    --config-file "$REPO/configs/trainers/CoOp/${CFG}.yaml" --output-dir "$DIR" \
    --model-dir "$MODEL_DIR" --load-epoch "${LOAD_EPOCH:-50}" --eval-only \
    TRAINER.COOP.N_CTX 16 TRAINER.COOP.CSC False TRAINER.COOP.CLASS_TOKEN_POSITION end "${EXTRA[@]}"
done
