#!/usr/bin/env bash
# Few-shot sweep: CoOp vs CoOp+Nemesis (PUN, PAN) over datasets x shots x seeds (paper recipe).
#   scripts/coop_nemesis/main.sh DATASET [DATASET ...]     ("all" = the 11 datasets)
# Env: DATA (required), SHOTS_LIST ("1 2 4 8 16"), SEEDS ("1 2 3"), METHODS ("coop pun pan"),
#      BACKBONE_CFG (rn50; the epoch suffix is chosen per shot: 1 -> _ep50, 2/4 -> _ep100, 8/16 -> 200 epochs,
#      imagenet always _ep50), CFG (fixed config, overrides the recipe), NCTX (16), CTP (end), CSC (False),
#      PUN_ALPHA (1.0), PAN_ALPHA (1.0), NT (two), NP (2), CW (0.5), PAN_BETA (0.0).
#      The PAN default NP 2, CW 0.5 is the one documented default (COOP.md, docs/EMBEDDED_DEFAULT.md,
#      tools/embedded_default.py); the Nemesis reference ships no value: its scripts take NP and CW as arguments).
# With no arguments, or with options only (--quick, --methods zs, ...), it runs the main job on the embedded default
# (scripts/embedded_default.sh; options: python tools/embedded_default.py --help). Unknown options are an error.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
USAGE="usage: $0 DATASET [DATASET ...] (or 'all'; env: DATA, SHOTS_LIST, SEEDS, METHODS, BACKBONE_CFG, CFG), or $0 [main-job options such as --quick]"
if [ $# -eq 0 ] || [[ "$1" == -* ]]; then
  if [ -f "$REPO_ROOT/scripts/embedded_default.sh" ]; then
    exec bash "$REPO_ROOT/scripts/embedded_default.sh" "$@"  # its option parser rejects unknown options (exit 2)
  fi
  echo "$USAGE" >&2
  exit 2
fi
for arg in "$@"; do
  if [[ "$arg" == -* ]]; then
    echo "error: $arg: options go before the datasets and only select the embedded-default main job; dataset sweeps are configured through the environment ($USAGE)" >&2
    exit 2
  fi
done
source "$HERE/../coop/lib.sh"  # run_child: forwards SIGINT/SIGTERM to the per-method scripts
ALL="caltech101 dtd eurosat fgvc_aircraft food101 imagenet oxford_flowers oxford_pets stanford_cars sun397 ucf101"
DATASETS="$*"; [ "$DATASETS" = "all" ] && DATASETS="$ALL"
for DATASET in $DATASETS; do
  [ -f "$REPO_ROOT/configs/datasets/${DATASET}.yaml" ] || { echo "error: unknown dataset $DATASET (configs/datasets/<name>.yaml; or 'all')" >&2; exit 2; }
done
SHOTS_LIST="${SHOTS_LIST:-1 2 4 8 16}" METHODS="${METHODS:-coop pun pan}" P="${BACKBONE_CFG:-rn50}"
NCTX="${NCTX:-16}" CTP="${CTP:-end}" CSC="${CSC:-False}" NT="${NT:-two}" NP="${NP:-2}" CW="${CW:-0.5}"
cfg_for() {  # cfg_for DATASET SHOTS
  if [ -n "${CFG:-}" ]; then echo "$CFG"; return; fi
  if [ "$1" = "imagenet" ] || [ "$2" -le 1 ]; then echo "${P}_ep50"
  elif [ "$2" -le 4 ]; then echo "${P}_ep100"
  else echo "$P"; fi
}
for DATASET in $DATASETS; do
  for SHOTS in $SHOTS_LIST; do
    C=$(cfg_for "$DATASET" "$SHOTS")
    for METHOD in $METHODS; do
      case "$METHOD" in
        coop) run_child bash "$HERE/../coop/main.sh" "$DATASET" "$C" "$CTP" "$NCTX" "$SHOTS" "$CSC" ;;
        pun) run_child bash "$HERE/train.sh" "$DATASET" "$C" "$CTP" "$NCTX" "$SHOTS" "$CSC" "${PUN_ALPHA:-1.0}" "$NT" "$NP" "$CW" 1.0 ;;
        pan) run_child bash "$HERE/train.sh" "$DATASET" "$C" "$CTP" "$NCTX" "$SHOTS" "$CSC" "${PAN_ALPHA:-1.0}" "$NT" "$NP" "$CW" "${PAN_BETA:-0.0}" ;;
        *) echo "error: unknown method $METHOD (coop | pun | pan)" >&2; exit 2 ;;
      esac
    done
  done
done
