#!/usr/bin/env bash
# The main job on the embedded default (TinySynth CLIP + SynthShapes; no datasets, weights, GPU or internet):
# zero-shot CLIP, CoOp, CoOp+Nemesis (PUN, PAN) few-shot, CoOp corruption sweep, figures, results table.
#   bash scripts/embedded_default.sh [--quick] [--shots ...] [--seeds ...] [--methods ...] [--output DIR] ...
# Options: python tools/embedded_default.py --help. Env: PYTHON (default python), OUTPUT_ROOT (output folder).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "${PYTHON:-python}" "$REPO/tools/embedded_default.py" "$@"
