#!/usr/bin/env bash
# IVLP + Nemesis defaults for the shared protocols (sourced). Env overrides: CFG (configs/trainers/IVLP/),
# TARGET (text: the first-layer text context, default; vision: IVLP's input-level visual prompts).
TRAINER=IVLPNemesis
CFG="${CFG:-vit_b16_c2_ep5_batch4_2+2ctx}"
CFG_DIR=IVLP
source "$(dirname "${BASH_SOURCE[0]}")/../cocoop/protocols.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../cocoop_nemesis/host.sh"
