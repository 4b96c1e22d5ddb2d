#!/usr/bin/env bash
# MaPLe + Nemesis defaults for the shared protocols (sourced). Env overrides: CFG (configs/trainers/MaPLe/),
# TARGET (text: the first-layer text context, default; vision: the input-level visual prompts proj(ctx)).
TRAINER=MaPLeNemesis
CFG="${CFG:-vit_b16_c2_ep5_batch4_2ctx}"
CFG_DIR=MaPLe
source "$(dirname "${BASH_SOURCE[0]}")/../cocoop/protocols.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../cocoop_nemesis/host.sh"
