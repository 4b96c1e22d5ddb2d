#!/usr/bin/env bash
# Shared helpers of the CoOp / Nemesis / CRT scripts (sourced, not run).
# Env: PYTHON (default python), OUTPUT_ROOT (default <repo>/output), SEEDS (default "1 2 3"; NSEEDS=N: 1..N),
#      EXTRA_OPTS (extra KEY VALUE opts appended to every train.py call), DATA (datasets root).
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-python}"
OUTPUT_ROOT="${OUTPUT_ROOT:-$REPO/output}"
if [ -n "${NSEEDS:-}" ] && ! [[ "$NSEEDS" =~ ^[1-9][0-9]*$ ]]; then echo "error: NSEEDS must be a positive integer (e.g. NSEEDS=5), got '$NSEEDS'" >&2; exit 2; fi
SEEDS="${SEEDS:-$(seq -s ' ' 1 "${NSEEDS:-3}")}"  # NSEEDS=5 or NSEEDS=10: seeds 1..N (the papers use 3)
read -r -a EXTRA <<< "${EXTRA_OPTS:-}"

require_data() {
  if [ -z "${DATA:-}" ]; then
    echo "error: set DATA to the datasets root, e.g. DATA=/path/to/data $0 ... (see DATASETS.md)" >&2
    exit 2
  fi
}

# run_finished DIR MARKER: the newest log in DIR has MARKER (Elapsed | macro_f1) in its last lines
run_finished() {
  local log="$1/log.txt"
  [ -f "$log" ] && tail -n 5 "$log" | grep -q "$2"
}

# prepare_run DIR MARKER: returns 1 (skip) for a finished run; empties an interrupted one
prepare_run() {
  local dir="$1" marker="$2"
  if run_finished "$dir" "$marker"; then
    echo "skip (finished): $dir"
    return 1
  fi
  if [ -d "$dir" ]; then
    echo "redo (interrupted): $dir"
    find "$dir" -mindepth 1 -delete
  fi
  mkdir -p "$dir"
  return 0
}

# max_epoch CFG_FILE: OPTIM.MAX_EPOCH of a trainer YAML
max_epoch() {
  awk '/^OPTIM:/{o=1;next} /^[^ ]/{o=0} o && /MAX_EPOCH:/{print $2; exit}' "$1"
}
