#!/usr/bin/env bash
# Corruption evaluation of trained CoOp models (one process per setting):
#   scripts/coop_crt/eval.sh CFG CTP NCTX SHOTS CSC EPOCH CORRUPT POS CRT_FACTOR
# CORRUPT: original | replace | scale (rescale accepted, passed as scale). EPOCH "auto" = the MAX_EPOCH of the config
# actually used (the YAML, overridden by an OPTIM.MAX_EPOCH in EXTRA_OPTS)
# (imagenet: 50). Env DATASETS (default: the 11), SEEDS, CRT_ROOT (default <repo>/output_crt).
# Model: $OUTPUT_ROOT/<dataset>/CoOp/<CFG>_<SHOTS>shots/nctx<NCTX>_csc<CSC>_ctp<CTP>/seed<S>
# Output: $CRT_ROOT/CoOpCRT/<dataset>/CoOp/<CFG>_<SHOTS>shots/{original | replace/pos-P_std-F | rescale/pos-P_scale-F}/seed<S>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../coop/lib.sh"
if [ $# -ne 9 ]; then echo "usage: $0 CFG CTP NCTX SHOTS CSC EPOCH CORRUPT POS CRT_FACTOR" >&2; exit 2; fi
CFG=$1 CTP=$2 NCTX=$3 SHOTS=$4 CSC=$5 EPOCH=$6 CORRUPT=$7 POS=$8 FACTOR=$9
DATASETS="${DATASETS:-caltech101 eurosat food101 oxford_flowers stanford_cars ucf101 dtd fgvc_aircraft oxford_pets sun397 imagenet}"
CRT_ROOT="${CRT_ROOT:-$REPO/output_crt}"
case "$CORRUPT" in
  original) SUB="original" ;;
  replace) SUB="replace/pos-${POS}_std-${FACTOR}" ;;
  scale|rescale) CORRUPT=scale; SUB="rescale/pos-${POS}_scale-${FACTOR}" ;;
  *) echo "error: CORRUPT must be original, replace or scale (rescale), got $CORRUPT" >&2; exit 2 ;;
esac
CFG_FILE="$REPO/configs/trainers/CoOpCRT/${CFG}.yaml"; [ -f "$CFG_FILE" ] || CFG_FILE="$REPO/configs/trainers/CoOp/${CFG}.yaml"
[ -f "$CFG_FILE" ] || { echo "error: no config $CFG (configs/trainers/CoOpCRT/$CFG.yaml or CoOp/$CFG.yaml)" >&2; exit 2; }
# max_epoch_used CFG_FILE: OPTIM.MAX_EPOCH of the config actually used (the YAML, then an OPTIM.MAX_EPOCH in EXTRA_OPTS)
max_epoch_used() {
  local e i; e=$(max_epoch "$1")
  for ((i = 0; i + 1 < ${#EXTRA[@]}; i += 2)); do [ "${EXTRA[$i]}" = "OPTIM.MAX_EPOCH" ] && e=${EXTRA[$((i + 1))]}; done
  echo "$e"
}
require_data
for DATASET in $DATASETS; do
  LOAD_EPOCH=$EPOCH
  if [ "$EPOCH" = "auto" ]; then
    if [ "$DATASET" = "imagenet" ]; then LOAD_EPOCH=50; else LOAD_EPOCH=$(max_epoch_used "$CFG_FILE"); fi
  fi
  for SEED in $SEEDS; do
    MODEL_DIR="$OUTPUT_ROOT/$DATASET/CoOp/${CFG}_${SHOTS}shots/nctx${NCTX}_csc${CSC}_ctp${CTP}/seed${SEED}"
    DIR="$CRT_ROOT/CoOpCRT/$DATASET/CoOp/${CFG}_${SHOTS}shots/${SUB}/seed${SEED}"
    prepare_run "$DIR" macro_f1 || continue
    run_child "$PYTHON" "$REPO/train.py" ${FORCE_ARGS[@]+"${FORCE_ARGS[@]}"} --root "$DATA" --seed "$SEED" --trainer CoOpCRT \
      --dataset-config-file "$REPO/configs/datasets/${DATASET}.yaml" --config-file "$CFG_FILE" \
      --output-dir "$DIR" --model-dir "$MODEL_DIR" --load-epoch "$LOAD_EPOCH" --eval-only \
      --corrupt-type "$CORRUPT" --corrupt-position "$POS" --crt-factor "$FACTOR" \
      TRAINER.CoOpCRT.N_CTX "$NCTX" TRAINER.CoOpCRT.CSC "$CSC" TRAINER.CoOpCRT.CLASS_TOKEN_POSITION "$CTP" \
      DATASET.NUM_SHOTS "$SHOTS" "${EXTRA[@]}"
  done
done
