"""Whether dataset readers may write their caches (the few-shot ``split_fewshot/shot_K-seed_S.pkl`` files).

Training runs may; evaluations (``train.py --eval-only``, ``tools/crt_sweep.py``) never do: they sample a missing
few-shot subset in memory (same seed, same draws as the training run that would create it) and write nothing into
the data root. ``dassl.engine.preflight.preflight`` sets the mode from the command line.
"""
from __future__ import annotations

_WRITABLE = [True]


def set_fewshot_cache_writable(writable: bool) -> None:
    """Allow (True, training) or forbid (False, evaluation) writing few-shot caches in this process."""
    _WRITABLE[0] = bool(writable)


def fewshot_cache_writable() -> bool:
    return _WRITABLE[0]
