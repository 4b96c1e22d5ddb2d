#!/usr/bin/env bash
# Shared base-to-new and cross-dataset/domain-generalisation protocols (sourced, not run) for
# scripts/{cocoop,kgcoop,maple,dept}/*.sh. Skip/redo logic and env come from scripts/coop/lib.sh:
#   DATA (datasets root), OUTPUT_ROOT (default <repo>/output), SEEDS (default "1 2 3"; a SEED argument runs
#   that seed only), PYTHON, EXTRA_OPTS (extra KEY VALUE opts), SHOTS (default 16), LOAD_EPOCH (default: the
#   config's OPTIM.MAX_EPOCH, i.e. the last checkpoint).
# The caller sets: TRAINER, CFG (config stem for base-to-new), XD_CFG (config stem for xd; default CFG),
#   CFG_DIR (configs/trainers/<CFG_DIR>; default TRAINER), optional METHOD_OPTS (array of KEY VALUE opts) and
#   SHOTS_TAG (folder name part; default shots_<SHOTS>), and for the Nemesis hosts RUN_PREFIX / RUN_NAME (folders
#   around <CFG>, e.g. Beta-<BETA> and alpha<A>_..._nt<NT>; default none).
# Layout (the CoOp/CoCoOp repositories' folder names):
#   base2new: $OUTPUT_ROOT/base2new/{train_base,test_new}/<DATASET>/<SHOTS_TAG>/<TRAINER>/[<RUN_PREFIX>/]<CFG>[/<RUN_NAME>]/seed<S>
#   xd:       $OUTPUT_ROOT/imagenet/<TRAINER>/<XD_CFG>_<SHOTS>shots/seed<S>  (training on all ImageNet classes)
#             $OUTPUT_ROOT/evaluation/<TRAINER>/<XD_CFG>_<SHOTS>shots/<DATASET>/seed<S>
source "$(dirname "${BASH_SOURCE[0]}")/../coop/lib.sh"
SHOTS="${SHOTS:-16}"

_cfg_path() { echo "$REPO/configs/trainers/${CFG_DIR:-$TRAINER}/$1.yaml"; }
_seeds() { if [ -n "${1:-}" ]; then echo "$1"; else echo "$SEEDS"; fi; }
_opts() { if [ -n "${METHOD_OPTS+x}" ]; then printf '%s\n' "${METHOD_OPTS[@]}"; fi; }
# _b2n_dir train_base|test_new DATASET SEED
_b2n_dir() {
  echo "$OUTPUT_ROOT/base2new/$1/$2/${SHOTS_TAG:-shots_$SHOTS}/$TRAINER/${RUN_PREFIX:+$RUN_PREFIX/}$CFG${RUN_NAME:+/$RUN_NAME}/seed$3"
}

# _run DATASET CFG_STEM OUT_DIR [train.py args...]: python train.py with the common arguments
_run() {
  local dataset=$1 cfg=$2 dir=$3 seed=$4
  shift 4
  local opts=()
  mapfile -t opts < <(_opts)
  run_child "$PYTHON" "$REPO/train.py" ${FORCE_ARGS[@]+"${FORCE_ARGS[@]}"} --root "$DATA" --seed "$seed" --trainer "$TRAINER" \
    --dataset-config-file "$REPO/configs/datasets/${dataset}.yaml" --config-file "$(_cfg_path "$cfg")" \
    --output-dir "$dir" "$@" ${opts[@]+"${opts[@]}"} DATASET.NUM_SHOTS "$SHOTS" ${EXTRA[@]+"${EXTRA[@]}"}
}

# b2n_train DATASET [SEED]: train on the base half
b2n_train() {
  local dataset=$1 seed dir
  require_data
  for seed in $(_seeds "${2:-}"); do
    dir=$(_b2n_dir train_base "$dataset" "$seed")
    prepare_run "$dir" Elapsed || continue
    _run "$dataset" "$CFG" "$dir" "$seed" DATASET.SUBSAMPLE_CLASSES base
  done
}

# b2n_test DATASET [SEED]: evaluate the base-trained model on the new half (load epoch = the config's last)
b2n_test() {
  local dataset=$1 seed dir model_dir epoch
  require_data
  epoch="${LOAD_EPOCH:-$(max_epoch "$(_cfg_path "$CFG")")}"
  for seed in $(_seeds "${2:-}"); do
    model_dir=$(_b2n_dir train_base "$dataset" "$seed")
    dir=$(_b2n_dir test_new "$dataset" "$seed")
    prepare_run "$dir" macro_f1 || continue
    _run "$dataset" "$CFG" "$dir" "$seed" --model-dir "$model_dir" --load-epoch "$epoch" --eval-only \
      DATASET.SUBSAMPLE_CLASSES new
  done
}

# xd_train [SEED]: train on all ImageNet classes (source of cross-dataset and domain generalisation)
xd_train() {
  local seed dir cfg="${XD_CFG:-$CFG}"
  require_data
  for seed in $(_seeds "${1:-}"); do
    dir="$OUTPUT_ROOT/imagenet/$TRAINER/${cfg}_${SHOTS}shots/seed$seed"
    prepare_run "$dir" Elapsed || continue
    _run imagenet "$cfg" "$dir" "$seed" DATASET.SUBSAMPLE_CLASSES all
  done
}

# xd_test DATASET [SEED]: evaluate the ImageNet model on DATASET (all classes)
xd_test() {
  local dataset=$1 seed dir model_dir epoch cfg="${XD_CFG:-$CFG}"
  require_data
  epoch="${LOAD_EPOCH:-$(max_epoch "$(_cfg_path "$cfg")")}"
  for seed in $(_seeds "${2:-}"); do
    model_dir="$OUTPUT_ROOT/imagenet/$TRAINER/${cfg}_${SHOTS}shots/seed$seed"
    dir="$OUTPUT_ROOT/evaluation/$TRAINER/${cfg}_${SHOTS}shots/$dataset/seed$seed"
    prepare_run "$dir" macro_f1 || continue
    _run "$dataset" "$cfg" "$dir" "$seed" --model-dir "$model_dir" --load-epoch "$epoch" --eval-only \
      DATASET.SUBSAMPLE_CLASSES all
  done
}

# usage_check EXPECTED_MIN EXPECTED_MAX "usage text" "$@"
usage_check() {
  local lo=$1 hi=$2 text=$3
  shift 3
  if [ $# -lt "$lo" ] || [ $# -gt "$hi" ]; then echo "usage: $text" >&2; exit 2; fi
}
