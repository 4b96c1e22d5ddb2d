#!/usr/bin/env bash
# The Nemesis paper's domain-generalisation table as one command: ImageNet, 16 shots ->
# ImageNet-V2 / -Sketch / -A / -R, for CoOp and CoOp + Nemesis (PUN and PAN) at the loss weights ALPHAS (the
# figure's omega, A in the code).
#   scripts/coop_nemesis/dg.sh [TARGET ...]   (default: imagenetv2 imagenet_sketch imagenet_a imagenet_r)
# 1. Trains the ImageNet models that are not finished, in the folders the few-shot sweep writes
#    (scripts/coop_nemesis/main.sh imagenet): CoOp through scripts/coop/main.sh, Nemesis through
#    scripts/coop_nemesis/train.sh, with CFG <BACKBONE_CFG>_ep50, 16 shots, M = 16, end, generic context.
# 2. Evaluates every model on every target: scripts/coop/eval.sh TARGET CFG (CoOp) and
#    scripts/coop_nemesis/eval.sh CoOpNemesis TARGET ALPHA NT NP CW BETA (Nemesis), each skipping finished runs.
# Env: DATA (required), BACKBONE_CFG (rn50), CFG (overrides <BACKBONE_CFG>_ep50), METHODS ("coop pun pan"),
#      ALPHAS ("1.0 10.0"), NT (two), NP (2), CW (0.5), PAN_BETA (0.0), TRAIN (1; 0: evaluate only), SEEDS, FORCE,
#      EXTRA_OPTS, OUTPUT_ROOT, OUTPUT_DG_ROOT as in the scripts it runs.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../coop/lib.sh"
TARGETS="$*"; [ -n "$TARGETS" ] || TARGETS="imagenetv2 imagenet_sketch imagenet_a imagenet_r"
for T in $TARGETS; do
  [ -f "$REPO/configs/datasets/${T}.yaml" ] || { echo "error: unknown dataset $T (configs/datasets/<name>.yaml)" >&2; exit 2; }
done
require_data
METHODS="${METHODS:-coop pun pan}" ALPHAS="${ALPHAS:-1.0 10.0}" C="${CFG:-${BACKBONE_CFG:-rn50}_ep50}"
NT="${NT:-two}" NP="${NP:-2}" CW="${CW:-0.5}" PAN_BETA="${PAN_BETA:-0.0}"
for M in $METHODS; do
  case "$M" in coop|pun|pan) ;; *) echo "error: unknown method $M (coop | pun | pan)" >&2; exit 2 ;; esac
done
# method -> "ALPHA BETA" pairs (coop: one empty pair)
settings() {
  case "$1" in
    coop) echo "- -" ;;
    pun) for A in $ALPHAS; do echo "$A 1.0"; done ;;
    pan) for A in $ALPHAS; do echo "$A $PAN_BETA"; done ;;
  esac
}
if [ "${TRAIN:-1}" = "1" ]; then
  for M in $METHODS; do
    while read -r A B; do
      if [ "$M" = coop ]; then run_child bash "$HERE/../coop/main.sh" imagenet "$C" end 16 16 False
      else run_child bash "$HERE/train.sh" imagenet "$C" end 16 16 False "$A" "$NT" "$NP" "$CW" "$B"; fi
    done < <(settings "$M")
  done
fi
for T in $TARGETS; do
  for M in $METHODS; do
    while read -r A B; do
      if [ "$M" = coop ]; then run_child bash "$HERE/../coop/eval.sh" "$T" "$C"
      else CFG="$C" run_child bash "$HERE/eval.sh" CoOpNemesis "$T" "$A" "$NT" "$NP" "$CW" "$B"; fi
    done < <(settings "$M")
  done
done
