"""The completion record and lock of a run folder: the ONE place that decides whether a run is finished.

Every reader (``train.py``, the bash scripts through ``python -m dassl.utils.run_record``, ``tools/crt_sweep.py``,
``tools/embedded_default.py``, ``tools/parse_test_res.py``, the sweep launcher, the results report) goes through
:func:`run_status` / :func:`read_record`; nobody greps log tails elsewhere.

Files in a run folder:

* ``run.json`` (:data:`RECORD_FILE`): written atomically as the *last* thing a finished training or evaluation
  does: ``{"finished": true, "kind": "train" | "eval", "config_hash": "...", "results": {...}, "time": ...}``.
* ``.lock`` (:data:`LOCK_FILE`): ``{"pid": P, "host": H, "started": T, "argv": [...]}`` while a process works on the
  folder.

Folders written by the reference forks have no record: they count as finished when their ``log.txt`` ends with
``Elapsed`` (training) or ``macro_f1`` (evaluation) in its last lines.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import socket
import sys
import time
from typing import Any, Literal

from .tools import atomic_write_text

RECORD_FILE = "run.json"
LOCK_FILE = ".lock"
#: markers of a finished reference-fork run in the last lines of its log.txt
LEGACY_MARKERS = ("Elapsed", "macro_f1")

RunStatus = Literal["finished", "running", "interrupted", "missing"]


def read_record(folder: str) -> dict[str, Any] | None:
    """The completion record of ``folder`` (None when absent or unreadable)."""
    path = osp.join(folder, RECORD_FILE)
    try:
        with open(path) as f:
            rec = json.load(f)
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def write_record(folder: str, kind: str, results: dict[str, Any], config_hash: str, **extra: Any) -> dict[str, Any]:
    """Atomically write the completion record (call it last, once everything else of the run is on disk)."""
    rec: dict[str, Any] = {"finished": True, "kind": kind, "config_hash": config_hash, "results": results,
                           "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    rec.update(extra)
    atomic_write_text(json.dumps(rec, indent=2, sort_keys=True) + "\n", osp.join(folder, RECORD_FILE))
    return rec


def legacy_finished(folder: str, markers: tuple[str, ...] = LEGACY_MARKERS, tail: int = 5) -> bool:
    """A reference-fork folder (no record) whose ``log.txt`` ends with one of ``markers``."""
    log = osp.join(folder, "log.txt")
    try:
        with open(log, errors="replace") as f:
            lines = f.readlines()[-tail:]
    except OSError:
        return False
    return any(m in line for line in lines for m in markers)


def is_finished(folder: str, kind: str | None = None) -> bool:
    """True when ``folder`` holds a finished run (our record, or a reference-fork log that ends as finished).

    ``kind`` ("train" | "eval") restricts to that kind of record; a legacy folder counts for either.
    """
    rec = read_record(folder)
    if rec is not None:
        return bool(rec.get("finished")) and (kind is None or rec.get("kind") == kind)
    return legacy_finished(folder)


# ------------------------------------------------------------------------------------------------ lock
def read_lock(folder: str) -> dict[str, Any] | None:
    try:
        with open(osp.join(folder, LOCK_FILE)) as f:
            lock = json.load(f)
    except (OSError, ValueError):
        return None
    return lock if isinstance(lock, dict) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_held(folder: str) -> dict[str, Any] | None:
    """The lock of a live owner (None when unlocked or stale: dead pid on this host)."""
    lock = read_lock(folder)
    if lock is None:
        return None
    if lock.get("host") == socket.gethostname() and not pid_alive(int(lock.get("pid", -1))):
        return None
    return lock


def run_status(folder: str) -> RunStatus:
    """``finished`` | ``running`` (lock held by a live process) | ``interrupted`` (folder with content) | ``missing``."""
    if is_finished(folder):
        return "finished"
    if lock_held(folder) is not None:
        return "running"
    if osp.isdir(folder) and any(not n.startswith(".") for n in os.listdir(folder)):
        return "interrupted"
    return "missing"


def main(argv: list[str] | None = None) -> int:
    """``python -m dassl.utils.run_record FOLDER``: print the status; exit 0 when finished, 1 otherwise."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m dassl.utils.run_record FOLDER", file=sys.stderr)
        return 2
    status = run_status(argv[0])
    print(status)
    return 0 if status == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())
