#!/usr/bin/env bash
# DePT (ExtrasLinearProbe<BASE>) defaults for the shared protocols (sourced); first argument BASE =
# CoOp | CoCoOp | KgCoOp | MaPLe. BASELINE=1 runs the plain BASE trainer with the same DePT-repo config.
# Env overrides: CFG.
dept_setup() {
  local base=$1
  case "$base" in
    CoOp) CFG="${CFG:-vit_b16_ep10_bs4_lr35}" ;;
    CoCoOp) CFG="${CFG:-vit_b16_c4_ep10_batch1_ctxv1}" ;;
    KgCoOp) CFG="${CFG:-vit_b16_ep10_ctxv1_bs4_lr35}" ;;
    MaPLe) CFG="${CFG:-vit_b16_c2_ep10_batch4_2ctx}" ;;
    *) echo "error: BASE must be CoOp, CoCoOp, KgCoOp or MaPLe, got '$base'" >&2; exit 2 ;;
  esac
  if [ "${BASELINE:-0}" = "1" ]; then TRAINER="$base"; else TRAINER="ExtrasLinearProbe$base"; fi
  XD_CFG="$CFG"
}
source "$(dirname "${BASH_SOURCE[0]}")/../cocoop/protocols.sh"
