#!/usr/bin/env bash
# MaPLe defaults for the shared protocols (sourced). Env overrides: CFG, XD_CFG.
TRAINER=MaPLe
CFG="${CFG:-vit_b16_c2_ep5_batch4_2ctx}"
XD_CFG="${XD_CFG:-vit_b16_c2_ep5_batch4_2ctx_cross_datasets}"


source "$(dirname "${BASH_SOURCE[0]}")/../cocoop/protocols.sh"
