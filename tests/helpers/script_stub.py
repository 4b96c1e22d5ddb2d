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
"""


def python_stub_env(tmp_path: Path, train_acc: float = 50.0, test_acc: float = 50.0, **extra: str) -> tuple[dict, Path]:
    """Write ``tmp_path/python`` (appends each argv to ``$CALLS``, writes ``log.txt`` in ``--output-dir``).

    Returns the environment for the scripts (PYTHON, CALLS, OUTPUT_ROOT, DATA, SEEDS="1 2" plus ``extra``)
    and the path of the calls file.
    """
    py = tmp_path / "python"
    py.write_text(_STUB.replace("{train_acc}", f"{train_acc:.1f}").replace("{test_acc}", f"{test_acc:.1f}"))
    py.chmod(0o755)
    calls = tmp_path / "calls.txt"
    env = dict(os.environ, PYTHON=str(py), CALLS=str(calls), OUTPUT_ROOT=str(tmp_path / "out"), DATA=str(tmp_path),
               SEEDS="1 2", STATUS_PYTHON=sys.executable, **extra)
    return env, calls
