#!/usr/bin/env bash
# VPT + Nemesis (on the visual prompts: VPTNemesis's default target) for the shared protocols (sourced).
# Env overrides: CFG (configs/trainers/VPT/).
TRAINER=VPTNemesis
CFG="${CFG:-vit_b16_c2_ep5_batch4_4}"
CFG_DIR=VPT
source "$(dirname "${BASH_SOURCE[0]}")/../cocoop/protocols.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../cocoop_nemesis/host.sh"
