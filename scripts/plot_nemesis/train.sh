#!/usr/bin/env bash
# PLOT + Nemesis (the Nemesis fork's script):
#   scripts/plot_nemesis/train.sh DATASET CFG CTP NCTX SHOTS CSC ALPHA NT NP CW BETA
# Output: $OUTPUT_ROOT/<DATASET>/PLOTNemesis/Beta-<BETA>/<CFG>_<SHOTS>shots/N<N>_<name>/seed<S>, <name> as
# scripts/coop_nemesis (alpha.._cw.._pn.._nctx.._csc.._ctp.._nt..; _cw/_pn only when BETA != 1).
# N prompt sets: PLOT_N (default 4, as the reference fixes it). Env as scripts/coop/lib.sh.
set -euo pipefail
HERE="$(dirname "${BASH_SOURCE[0]}")"
source "$HERE/../coop/lib.sh"
source "$HERE/../coop_nemesis/lib.sh"
if [ $# -ne 11 ]; then echo "usage: $0 DATASET CFG CTP NCTX SHOTS CSC ALPHA NT NP CW BETA" >&2; exit 2; fi
DATASET=$1 CFG=$2 CTP=$3 NCTX=$4 SHOTS=$5 CSC=$6 ALPHA=$7 NT=$8 NP=$9 CW=${10} BETA=${11}
N="${PLOT_N:-4}"
require_data
NAME="N${N}_$(nemesis_name "$ALPHA" "$NT" "$NP" "$CW" "$BETA" "$NCTX" "$CSC" "$CTP")"
for SEED in $SEEDS; do
  DIR="$OUTPUT_ROOT/$DATASET/PLOTNemesis/Beta-${BETA}/${CFG}_${SHOTS}shots/${NAME}/seed${SEED}"
  prepare_run "$DIR" Elapsed || continue
  run_child "$PYTHON" "$REPO/train.py" ${FORCE_ARGS[@]+"${FORCE_ARGS[@]}"} --root "$DATA" --seed "$SEED" \
    --trainer PLOTNemesis --dataset-config-file "$REPO/configs/datasets/${DATASET}.yaml" \
    --config-file "$REPO/configs/trainers/PLOTNemesis/${CFG}.yaml" --output-dir "$DIR" ${DO_TEST:+--do-test} \
    TRAINER.PLOTNemesis.N "$N" TRAINER.PLOTNemesis.N_CTX "$NCTX" TRAINER.PLOTNemesis.CSC "$CSC" \
    TRAINER.PLOTNemesis.CLASS_TOKEN_POSITION "$CTP" TRAINER.PLOTNemesis.A "$ALPHA" TRAINER.PLOTNemesis.NT "$NT" \
    TRAINER.PLOTNemesis.NP "$NP" TRAINER.PLOTNemesis.CW "$CW" TRAINER.PLOTNemesis.BETA "$BETA" \
    DATASET.NUM_SHOTS "$SHOTS" "${EXTRA[@]}"
done
