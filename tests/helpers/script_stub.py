"""A stand-in ``python`` for the sweep-script tests: records its argv and writes a finished (or eval) log."""
from __future__ import annotations

import os
import sys
from pathlib import Path

_STUB = r"""#!/usr/bin/env bash
echo "$@" >> "$CALLS"
out=""; eval_only=0; prev=""
for a in "$@"; do
  [ "$prev" = "--output-dir" ] && out="$a"
  [ "$a" = "--eval-only" ] && eval_only=1
  prev="$a"
done
mkdir -p "$out"
if [ $eval_only = 1 ]; then printf '=> result\n* accuracy: {test_acc}%%\n* macro_f1: 40.0%%\n' > "$out/log.txt"
else printf 'Finish training\n* accuracy: {train_acc}%%\nElapsed: 0:00:01\n' > "$out/log.txt"; fi
if [ -n "${STUB_RECORD:-}" ]; then  # write the completion record train.py writes (with its request fingerprint)
  kind=train; [ $eval_only = 1 ] && kind=eval
  "$STATUS_PYTHON" -c 'import sys; sys.path.insert(0, sys.argv[1]); from dassl.utils import run_record as r
r.write_record(sys.argv[2], sys.argv[3], {}, "stub", request=r.request_fingerprint(sys.argv[4:]))' \
    "$STUB_REPO" "$out" "$kind" "$@"
fi
"""


def python_stub_env(tmp_path: Path, train_acc: float = 50.0, test_acc: float = 50.0, record: bool = False,
                    **extra: str) -> tuple[dict, Path]:
    """Write ``tmp_path/python`` (appends each argv to ``$CALLS``, writes ``log.txt`` in ``--output-dir``; with
    ``record``, also the ``run.json`` train.py writes, request fingerprint included, instead of only a reference
    fork's log).

    Returns the environment for the scripts (PYTHON, CALLS, OUTPUT_ROOT, DATA, SEEDS="1 2" plus ``extra``)
    and the path of the calls file.
    """
    py = tmp_path / "python"
    py.write_text(_STUB.replace("{train_acc}", f"{train_acc:.1f}").replace("{test_acc}", f"{test_acc:.1f}"))
    py.chmod(0o755)
    calls = tmp_path / "calls.txt"
    env = dict(os.environ, PYTHON=str(py), CALLS=str(calls), OUTPUT_ROOT=str(tmp_path / "out"), DATA=str(tmp_path),
               SEEDS="1 2", STATUS_PYTHON=sys.executable, **extra)
    if record:
        env.update(STUB_RECORD="1", STUB_REPO=str(Path(__file__).resolve().parents[2]))
    return env, calls
