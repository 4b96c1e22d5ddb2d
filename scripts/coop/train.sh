#!/usr/bin/env bash
# CoOp few-shot training under the Nemesis repository's name: scripts/coop/train.sh DATASET CFG CTP NCTX SHOTS CSC
# Same runs and folders as scripts/coop/main.sh:
# $OUTPUT_ROOT/<DATASET>/CoOp/<CFG>_<SHOTS>shots/nctx<NCTX>_csc<CSC>_ctp<CTP>/seed<S> (finished seeds are skipped:
# the reference's skip test never fired).
source "$(dirname "${BASH_SOURCE[0]}")/main.sh"
