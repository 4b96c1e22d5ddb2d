#!/usr/bin/env bash
# GPU benchmark in one call (under 5 minutes on one GPU): ms/iteration, peak memory, fp16/amp checks.
#   bash bench/gpu.sh [OUT_DIR]      (default bench/gpu_out; writes gpu_bench.json and gpu_bench.md)
# Without a visible GPU it runs the tiny CPU fallback (a few seconds). Extra arguments go to bench/gpu.py.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-bench/gpu_out}"
shift || true
exec timeout 290 "${PYTHON:-python}" bench/gpu.py --out "$OUT" "$@"
