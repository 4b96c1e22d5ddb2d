"""File-tree helpers for tests that must prove a run folder was left untouched."""
from __future__ import annotations

import hashlib
import os


def tree_hashes(folder) -> dict[str, str]:
    """sha256 of every file (hidden ones included) under ``folder``, keyed by relative path."""
    out = {}
    for dirpath, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return out
