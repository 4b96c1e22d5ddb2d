"""Shared pytest setup: the repository root on sys.path, CPU only, quiet logs.

Fixtures that build test data live in ``tests/helpers/`` (import them explicitly).
"""
from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fewshot_cache_writable():
    """``train.py --eval-only`` makes few-shot caches read-only for its process (dassl.data.cache_policy); tests
    run many commands in one process, so each test starts in the default (writable) mode."""
    from dassl.data.cache_policy import set_fewshot_cache_writable

    set_fewshot_cache_writable(True)
    yield
    set_fewshot_cache_writable(True)
