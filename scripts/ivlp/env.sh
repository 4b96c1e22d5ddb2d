#!/usr/bin/env bash
# IVLP defaults for the shared protocols (sourced). Env overrides: CFG (e.g. vit_b16_c2_ep5_batch4_4ctx_language_only),
# XD_CFG (default CFG).
TRAINER=IVLP
CFG="${CFG:-vit_b16_c2_ep5_batch4_2+2ctx}"
XD_CFG="${XD_CFG:-$CFG}"
source "$(dirname "${BASH_SOURCE[0]}")/../cocoop/protocols.sh"
