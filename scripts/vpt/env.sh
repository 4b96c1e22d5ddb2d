#!/usr/bin/env bash
# VPT defaults for the shared protocols (sourced). Env overrides: CFG, XD_CFG (default CFG).
TRAINER=VPT
CFG="${CFG:-vit_b16_c2_ep5_batch4_4}"
XD_CFG="${XD_CFG:-$CFG}"
source "$(dirname "${BASH_SOURCE[0]}")/../cocoop/protocols.sh"
