#!/usr/bin/env bash
# KgCoOp defaults for the shared protocols (sourced). Env overrides: CFG, XD_CFG, W (default 8.0).
TRAINER=KgCoOp
CFG="${CFG:-vit_b16_ep100_ctxv1}"

METHOD_OPTS=(TRAINER.COOP.N_CTX 4 TRAINER.COOP.CSC False TRAINER.COOP.CLASS_TOKEN_POSITION end TRAINER.COOP.W "${W:-8.0}")
SHOTS_TAG="shots_${SHOTS:-16}_${W:-8.0}"
source "$(dirname "${BASH_SOURCE[0]}")/../cocoop/protocols.sh"
