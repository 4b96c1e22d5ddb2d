#!/usr/bin/env bash
# The README's corruption experiments through the fast sweep (tools/crt_sweep.py: one process per
# dataset x (cfg, shots), test images encoded once):
#   original: rn50_ep50 1/2 shots, rn50_ep100 4 shots, rn50 8/16 shots (load epoch = LOAD_EPOCH if set, else the
#   OPTIM.MAX_EPOCH of the config actually used, EXTRA_OPTS included; imagenet 50);
#   replace: positions $POSITIONS (0 1 2) with std $REPLACE_FACTORS (0); scale: same positions, $SCALE_FACTORS (0.001);
#   both on rn50_ep50 1 shot. Env: DATA, DATASETS, SEEDS, NCTX (16), CSC (False), CTP (end), CRT_ROOT, OUTPUT_ROOT.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../coop/lib.sh"
DATASETS="${DATASETS:-caltech101 eurosat food101 oxford_flowers stanford_cars ucf101 dtd fgvc_aircraft oxford_pets sun397 imagenet}"
CRT_ROOT="${CRT_ROOT:-$REPO/output_crt}" NCTX="${NCTX:-16}" CSC="${CSC:-False}" CTP="${CTP:-end}"
POSITIONS="${POSITIONS:-0 1 2}" REPLACE_FACTORS="${REPLACE_FACTORS:-0}" SCALE_FACTORS="${SCALE_FACTORS:-0.001}"
require_data
sweep() {  # sweep DATASET CFG SHOTS TYPES...
  local dataset=$1 cfg=$2 shots=$3; shift 3
  # load epoch: $LOAD_EPOCH, else 50 for imagenet (the reference forces 50 epochs there), else crt_sweep uses the
  # OPTIM.MAX_EPOCH of the config it actually builds (YAML + EXTRA_OPTS), so an overridden MAX_EPOCH is followed
  local epoch_arg=(); if [ -n "${LOAD_EPOCH:-}" ]; then epoch_arg=(--load-epoch "$LOAD_EPOCH"); elif [ "$dataset" = "imagenet" ]; then epoch_arg=(--load-epoch 50); fi
  local cfg_file="$REPO/configs/trainers/CoOpCRT/${cfg}.yaml"; [ -f "$cfg_file" ] || cfg_file="$REPO/configs/trainers/CoOp/${cfg}.yaml"
  read -r -a pos <<< "$POSITIONS"; read -r -a rf <<< "$REPLACE_FACTORS"; read -r -a sf <<< "$SCALE_FACTORS"; read -r -a seeds <<< "$SEEDS"
  run_child "$PYTHON" "$REPO/tools/crt_sweep.py" ${FORCE_ARGS[@]+"${FORCE_ARGS[@]}"} --root "$DATA" --dataset-config-file "$REPO/configs/datasets/${dataset}.yaml" \
    --config-file "$cfg_file" \
    --model-dir "$OUTPUT_ROOT/$dataset/CoOp/${cfg}_${shots}shots/nctx${NCTX}_csc${CSC}_ctp${CTP}/seed{seed}" \
    "${epoch_arg[@]}" --output-base "$CRT_ROOT/CoOpCRT/$dataset/CoOp/${cfg}_${shots}shots" \
    --seeds "${seeds[@]}" --types "$@" --positions "${pos[@]}" --replace-factors "${rf[@]}" --scale-factors "${sf[@]}" \
    --opts TRAINER.CoOpCRT.N_CTX "$NCTX" TRAINER.CoOpCRT.CSC "$CSC" TRAINER.CoOpCRT.CLASS_TOKEN_POSITION "$CTP" \
    DATASET.NUM_SHOTS "$shots" "${EXTRA[@]}"
}
for DATASET in $DATASETS; do
  sweep "$DATASET" rn50_ep50 1 original replace scale
  sweep "$DATASET" rn50_ep50 2 original
  sweep "$DATASET" rn50_ep100 4 original
  sweep "$DATASET" rn50 8 original
  sweep "$DATASET" rn50 16 original
done
