#!/usr/bin/env bash
# KgCoOp + Nemesis defaults for the shared protocols (sourced). Env overrides: CFG (configs/trainers/KgCoOp/), W (8.0).
TRAINER=KgCoOpNemesis
CFG="${CFG:-vit_b16_ep100_ctxv1}"
CFG_DIR=KgCoOp
METHOD_OPTS=(TRAINER.COOP.N_CTX 4 TRAINER.COOP.CSC False TRAINER.COOP.CLASS_TOKEN_POSITION end TRAINER.COOP.W "${W:-8.0}")
SHOTS_TAG="shots_${SHOTS:-16}_${W:-8.0}"
source "$(dirname "${BASH_SOURCE[0]}")/../cocoop/protocols.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../cocoop_nemesis/host.sh"
