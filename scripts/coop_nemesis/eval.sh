#!/usr/bin/env bash
# Domain generalisation of ImageNet-trained CoOp+Nemesis (CFG rn50_ep50, 16 shots, M=16, end, generic):
# scripts/coop_nemesis/eval.sh TRAINER DATASET ALPHA NT NP CW BETA   (LOAD_EPOCH default 50, CFG env default rn50_ep50:
# the config scripts/coop_nemesis/main.sh trains imagenet with, so `main.sh imagenet` then `eval.sh` connect)
# Model: $OUTPUT_ROOT/imagenet/<TRAINER>/Beta-<BETA>/<CFG>_16shots/<name>/seed<S> (always imagenet; the reference built it with the target dataset's name)
# Output: $OUTPUT_DG_ROOT (default <repo>/output_dg)/<DATASET>/<TRAINER>/Beta-<BETA>/<CFG>_16shots/<name>/seed<S>
set -euo pipefail
HERE="$(dirname "${BASH_SOURCE[0]}")"
source "$HERE/../coop/lib.sh"
source "$HERE/lib.sh"
if [ $# -ne 7 ]; then echo "usage: $0 TRAINER DATASET ALPHA NT NP CW BETA" >&2; exit 2; fi
TRAINER=$1 DATASET=$2 ALPHA=$3 NT=$4 NP=$5 CW=$6 BETA=$7
CFG="${CFG:-${BACKBONE_CFG:-rn50}_ep50}" OUTPUT_DG_ROOT="${OUTPUT_DG_ROOT:-$REPO/output_dg}"
require_data
NAME=$(nemesis_name "$ALPHA" "$NT" "$NP" "$CW" "$BETA" 16 False end)
for SEED in $SEEDS; do
  MODEL_DIR="$OUTPUT_ROOT/imagenet/${TRAINER}/Beta-${BETA}/${CFG}_16shots/${NAME}/seed${SEED}"
  DIR="$OUTPUT_DG_ROOT/${DATASET}/${TRAINER}/Beta-${BETA}/${CFG}_16shots/${NAME}/seed${SEED}"
  prepare_run "$DIR" macro_f1 || continue
  run_child "$PYTHON" "$REPO/train.py" ${FORCE_ARGS[@]+"${FORCE_ARGS[@]}"} --root "$DATA" --seed "$SEED" --trainer "$TRAINER" \
    --dataset-config-file "$REPO/configs/datasets/${DATASET}.yaml" \
    --config-file "$REPO/configs/trainers/CoOpNemesis/${CFG}.yaml" --output-dir "$DIR" \
    --model-dir "$MODEL_DIR" --load-epoch "${LOAD_EPOCH:-50}" --eval-only \
    TRAINER.CoOpNemesis.N_CTX 16 TRAINER.CoOpNemesis.CSC False TRAINER.CoOpNemesis.CLASS_TOKEN_POSITION end \
    TRAINER.CoOpNemesis.A "$ALPHA" TRAINER.CoOpNemesis.NT "$NT" TRAINER.CoOpNemesis.NP "$NP" \
    TRAINER.CoOpNemesis.CW "$CW" TRAINER.CoOpNemesis.BETA "$BETA" "${EXTRA[@]}"
done
