#!/usr/bin/env bash
# CoOp + Nemesis: scripts/coop_nemesis/train.sh DATASET CFG CTP NCTX SHOTS CSC ALPHA NT NP CW BETA
# Output: $OUTPUT_ROOT/<DATASET>/CoOpNemesis/Beta-<BETA>/<CFG>_<SHOTS>shots/<name>/seed<S>
set -euo pipefail
HERE="$(dirname "${BASH_SOURCE[0]}")"
source "$HERE/../coop/lib.sh"
source "$HERE/lib.sh"
if [ $# -ne 11 ]; then echo "usage: $0 DATASET CFG CTP NCTX SHOTS CSC ALPHA NT NP CW BETA" >&2; exit 2; fi
DATASET=$1 CFG=$2 CTP=$3 NCTX=$4 SHOTS=$5 CSC=$6 ALPHA=$7 NT=$8 NP=$9 CW=${10} BETA=${11}
require_data
NAME=$(nemesis_name "$ALPHA" "$NT" "$NP" "$CW" "$BETA" "$NCTX" "$CSC" "$CTP")
for SEED in $SEEDS; do
  DIR="$OUTPUT_ROOT/$DATASET/CoOpNemesis/Beta-${BETA}/${CFG}_${SHOTS}shots/${NAME}/seed${SEED}"
  prepare_run "$DIR" Elapsed || continue
  run_child "$PYTHON" "$REPO/train.py" ${FORCE_ARGS[@]+"${FORCE_ARGS[@]}"} --root "$DATA" --seed "$SEED" --trainer CoOpNemesis \
    --dataset-config-file "$REPO/configs/datasets/${DATASET}.yaml" \
    --config-file "$REPO/configs/trainers/CoOpNemesis/${CFG}.yaml" --output-dir "$DIR" ${DO_TEST:+--do-test} \
    TRAINER.CoOpNemesis.N_CTX "$NCTX" TRAINER.CoOpNemesis.CSC "$CSC" \
    TRAINER.CoOpNemesis.CLASS_TOKEN_POSITION "$CTP" TRAINER.CoOpNemesis.A "$ALPHA" TRAINER.CoOpNemesis.NT "$NT" \
    TRAINER.CoOpNemesis.NP "$NP" TRAINER.CoOpNemesis.CW "$CW" TRAINER.CoOpNemesis.BETA "$BETA" \
    DATASET.NUM_SHOTS "$SHOTS" "${EXTRA[@]}"
done
