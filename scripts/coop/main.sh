#!/usr/bin/env bash
# CoOp few-shot training: scripts/coop/main.sh DATASET CFG CTP NCTX SHOTS CSC
# Output: $OUTPUT_ROOT/<DATASET>/CoOp/<CFG>_<SHOTS>shots/nctx<NCTX>_csc<CSC>_ctp<CTP>/seed<S> (seeds $SEEDS)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if [ $# -ne 6 ]; then echo "usage: $0 DATASET CFG CTP NCTX SHOTS CSC" >&2; exit 2; fi
DATASET=$1 CFG=$2 CTP=$3 NCTX=$4 SHOTS=$5 CSC=$6
require_data
for SEED in $SEEDS; do
  DIR="$OUTPUT_ROOT/$DATASET/CoOp/${CFG}_${SHOTS}shots/nctx${NCTX}_csc${CSC}_ctp${CTP}/seed${SEED}"
  prepare_run "$DIR" Elapsed || continue
  run_child "$PYTHON" "$REPO/train.py" ${FORCE_ARGS[@]+"${FORCE_ARGS[@]}"} --root "$DATA" --seed "$SEED" --trainer CoOp \
    --dataset-config-file "$REPO/configs/datasets/${DATASET}.yaml" \
    --config-file "$REPO/configs/trainers/CoOp/${CFG}.yaml" --output-dir "$DIR" ${DO_TEST:+--do-test} \
    TRAINER.COOP.N_CTX "$NCTX" TRAINER.COOP.CSC "$CSC" TRAINER.COOP.CLASS_TOKEN_POSITION "$CTP" \
    DATASET.NUM_SHOTS "$SHOTS" "${EXTRA[@]}"
done
