#!/usr/bin/env bash
# CoCoOp defaults for the shared protocols (sourced). Env overrides: CFG, XD_CFG.
TRAINER=CoCoOp
CFG="${CFG:-vit_b16_c4_ep10_batch1_ctxv1}"



source "$(dirname "${BASH_SOURCE[0]}")/../cocoop/protocols.sh"
