#!/usr/bin/env bash
# CoCoOp + Nemesis defaults for the shared protocols (sourced). Env overrides: CFG (configs/trainers/CoCoOp/).
TRAINER=CoCoOpNemesis
CFG="${CFG:-vit_b16_c4_ep10_batch1_ctxv1}"
CFG_DIR=CoCoOp
source "$(dirname "${BASH_SOURCE[0]}")/../cocoop/protocols.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../cocoop_nemesis/host.sh"
