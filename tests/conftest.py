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
