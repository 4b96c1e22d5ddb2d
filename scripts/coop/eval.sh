#!/usr/bin/env bash
# Domain generalisation of an ImageNet-trained CoOp-style model (16 shots, M=16, end, generic), two signatures:
#   scripts/coop/eval.sh DATASET CFG      (CoOp's)   model $OUTPUT_ROOT/imagenet/CoOp/<CFG>_16shots/nctx16_cscFalse_ctpend/seed<S>
#                                                    -> $OUTPUT_ROOT/evaluation/CoOp/<CFG>_16shots/nctx16_cscFalse_ctpend/<DATASET>/seed<S>
#   scripts/coop/eval.sh TRAINER DATASET  (Nemesis') model $OUTPUT_ROOT/imagenet/<TRAINER>/<CFG>_16shots/nctx16_cscFalse_ctpend/seed<S>
#                                                    -> $OUTPUT_DG_ROOT (default <repo>/output_dg)/evaluation/<DATASET>/<TRAINER>/seed<S>
#      CFG: env, default rn50 (the reference's; CFG=rn50_ep50 reads what scripts/coop_nemesis/main.sh trains on
#      ImageNet). Config configs/trainers/<TRAINER>/<CFG>.yaml, else configs/trainers/CoOp/<CFG>.yaml.
#      For CoOp + Nemesis models use scripts/coop_nemesis/eval.sh (its folders carry the Nemesis arguments).
# The first argument is a trainer iff it is a registered trainer name (read from the sources; no python start-up).
# LOAD_EPOCH default 50.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# registered_trainers: the classes registered with @TRAINER_REGISTRY.register() in trainers/*.py, one per line
# (tests/test_scripts_vpt.py checks the list against the registry)
registered_trainers() {
  awk '/^@TRAINER_REGISTRY\.register\(/ {r = 1; next} r && /^class / {sub(/^class /, ""); sub(/[(:].*/, ""); print} {r = 0}' \
    "$REPO"/trainers/*.py
}
if [ $# -ne 2 ]; then echo "usage: $0 DATASET CFG  or  $0 TRAINER DATASET" >&2; exit 2; fi
require_data
if registered_trainers | grep -qx -- "$1"; then
  TRAINER=$1 DATASET=$2 CFG="${CFG:-rn50}" OUTPUT_DG_ROOT="${OUTPUT_DG_ROOT:-$REPO/output_dg}"
  CFG_FILE="$REPO/configs/trainers/$TRAINER/${CFG}.yaml"
  [ -f "$CFG_FILE" ] || CFG_FILE="$REPO/configs/trainers/CoOp/${CFG}.yaml"
  for SEED in $SEEDS; do
    MODEL_DIR="$OUTPUT_ROOT/imagenet/$TRAINER/${CFG}_16shots/nctx16_cscFalse_ctpend/seed${SEED}"
    DIR="$OUTPUT_DG_ROOT/evaluation/${DATASET}/${TRAINER}/seed${SEED}"
    prepare_run "$DIR" macro_f1 || continue
    run_child "$PYTHON" "$REPO/train.py" ${FORCE_ARGS[@]+"${FORCE_ARGS[@]}"} --root "$DATA" --seed "$SEED" --trainer "$TRAINER" \
      --dataset-config-file "$REPO/configs/datasets/${DATASET}.yaml" --config-file "$CFG_FILE" --output-dir "$DIR" \
      --model-dir "$MODEL_DIR" --load-epoch "${LOAD_EPOCH:-50}" --eval-only \
      MODEL.PROMPT_LEARNER.N_CTX 16 MODEL.PROMPT_LEARNER.CSC False MODEL.PROMPT_LEARNER.CLASS_TOKEN_POSITION end "${EXTRA[@]}"
  done
  exit 0
fi
DATASET=$1 CFG=$2
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
