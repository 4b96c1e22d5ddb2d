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

# FORCE=1: start finished or differently configured runs over (train.py --force moves the old files into
# <run>/.replaced/<timestamp>/; nothing is deleted).
FORCE_ARGS=()
if [ "${FORCE:-0}" = "1" ]; then FORCE_ARGS=(--force); fi
# STATUS_PYTHON: the interpreter that reads run records (stdlib only; default: python3, else $PYTHON)
STATUS_PYTHON="${STATUS_PYTHON:-$(command -v python3 || echo "$PYTHON")}"

# run_status DIR [train|eval]: finished | running <owner> | interrupted | missing (dassl/utils/run_record.py,
# the one reader of completion records; reference-fork folders count as finished by their log tail)
run_status() {
  local kind=()
  [ -n "${2:-}" ] && kind=(--kind "$2")
  "$STATUS_PYTHON" "$REPO/dassl/utils/run_record.py" status ${kind[@]+"${kind[@]}"} "$1"
}

# run_finished DIR [KIND]: the run in DIR has finished (KIND: train | eval; Elapsed / macro_f1 accepted too)
run_finished() {
  local st
  st=$(run_status "$1" "$(_kind "${2:-}")") || true
  [ "$st" = "finished" ]
}

_kind() {
  case "${1:-}" in
    Elapsed|train) echo train ;;
    macro_f1|eval) echo eval ;;
    *) echo "" ;;
  esac
}

# prepare_run DIR KIND: returns 1 (skip) for a run another process is running; an interrupted run is continued in
# place (train.py resumes training, redoes an evaluation). A finished run is handed to the next run_child, which
# skips it when it was started with exactly the same command and unchanged config files, and otherwise lets
# train.py compare the configs key by key (same config: "skip (finished)", exit 0; another config: an error naming
# the differing keys; FORCE=1 redoes it). Never deletes. KIND: train | eval (Elapsed | macro_f1 accepted).
_FINISHED_DIR=""
_FINISHED_KIND=""
prepare_run() {
  local dir="$1" st
  _FINISHED_DIR=""
  st=$(run_status "$dir" "$(_kind "${2:-}")") || true
  case "$st" in
    finished)
      if [ "${FORCE:-0}" = "1" ]; then echo "redo (FORCE=1): $dir"; return 0; fi
      _FINISHED_DIR="$dir" _FINISHED_KIND="$(_kind "${2:-}")"
      return 0 ;;
    running*)
      echo "skip (${st}): $dir"; return 1 ;;
    interrupted)
      echo "continue (interrupted): $dir"; return 0 ;;
    missing|"")
      return 0 ;;
    *)
      echo "error: cannot read the status of $dir: $st" >&2; return 1 ;;
  esac
}

# run_child CMD...: run CMD in the background and wait for it, forwarding SIGINT/SIGTERM to it, so killing the
# script never leaves an orphaned training process; returns CMD's exit code.
_CHILD_PID=""
_forward_signal() {
  local sig=$1 code=$2
  if [ -n "$_CHILD_PID" ]; then
    kill -s "$sig" "$_CHILD_PID" 2>/dev/null || true
    wait "$_CHILD_PID" 2>/dev/null || true
  fi
  exit "$code"
}
trap '_forward_signal INT 130' INT
trap '_forward_signal TERM 143' TERM
run_child() {
  local rc=0
  if [ -n "$_FINISHED_DIR" ]; then
    local dir="$_FINISHED_DIR" kind=()
    [ -n "$_FINISHED_KIND" ] && kind=(--kind "$_FINISHED_KIND")
    _FINISHED_DIR=""
    if "$STATUS_PYTHON" "$REPO/dassl/utils/run_record.py" matches ${kind[@]+"${kind[@]}"} "$dir" -- "$@"; then
      echo "skip (finished): $dir"
      return 0
    fi
    echo "check (finished, the command or a config file differs from the recorded one): $dir"
  fi
  "$@" &
  _CHILD_PID=$!
  wait "$_CHILD_PID" || rc=$?
  _CHILD_PID=""
  return "$rc"
}

# max_epoch CFG_FILE: OPTIM.MAX_EPOCH of a trainer YAML
max_epoch() {
  awk '/^OPTIM:/{o=1;next} /^[^ ]/{o=0} o && /MAX_EPOCH:/{print $2; exit}' "$1"
}
