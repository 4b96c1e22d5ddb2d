#!/usr/bin/env bash
# PLOT few-shot training (the Nemesis fork's script): scripts/plot/train.sh DATASET CFG CTP NCTX SHOTS CSC
# Output: $OUTPUT_ROOT/<DATASET>/PLOT/<CFG>_<SHOTS>shots/N<N>_nctx<NCTX>_csc<CSC>_ctp<CTP>/seed<S> (seeds $SEEDS)
# N prompt sets: PLOT_N (default 4, as the reference fixes it). Env as scripts/coop/lib.sh (DATA, OUTPUT_ROOT,
# SEEDS / NSEEDS, EXTRA_OPTS, DO_TEST=1 for --do-test, FORCE=1). Finished runs are skipped, interrupted ones continued.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../coop/lib.sh"
if [ $# -ne 6 ]; then echo "usage: $0 DATASET CFG CTP NCTX SHOTS CSC" >&2; exit 2; fi
DATASET=$1 CFG=$2 CTP=$3 NCTX=$4 SHOTS=$5 CSC=$6
N="${PLOT_N:-4}"
require_data
for SEED in $SEEDS; do
  DIR="$OUTPUT_ROOT/$DATASET/PLOT/${CFG}_${SHOTS}shots/N${N}_nctx${NCTX}_csc${CSC}_ctp${CTP}/seed${SEED}"
  prepare_run "$DIR" Elapsed || continue
  run_child "$PYTHON" "$REPO/train.py" ${FORCE_ARGS[@]+"${FORCE_ARGS[@]}"} --root "$DATA" --seed "$SEED" --trainer PLOT \
    --dataset-config-file "$REPO/configs/datasets/${DATASET}.yaml" \
    --config-file "$REPO/configs/trainers/PLOT/${CFG}.yaml" --output-dir "$DIR" ${DO_TEST:+--do-test} \
    TRAINER.PLOT.N "$N" TRAINER.PLOT.N_CTX "$NCTX" TRAINER.PLOT.CSC "$CSC" TRAINER.PLOT.CLASS_TOKEN_POSITION "$CTP" \
    DATASET.NUM_SHOTS "$SHOTS" "${EXTRA[@]}"
done
