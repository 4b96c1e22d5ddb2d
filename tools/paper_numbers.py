"""The published numbers (``tools/data/paper_numbers.json``) and how a published variant matches ours; shared by
``tools/report.py`` (tables) and ``tools/plot_results.py`` (figures)."""
from __future__ import annotations

import json
import os.path as osp

PAPER_FILE = osp.join(osp.dirname(osp.abspath(__file__)), "data", "paper_numbers.json")


def load_paper(path: str = PAPER_FILE) -> dict:
    """The published-numbers file: ``{"entries": [{protocol, method, variant, dataset, shots, accuracy, ...}]}``."""
    with open(path) as f:
        return json.load(f)


def variant_matches(paper: str | None, ours: str | None) -> bool:
    """A published variant (words such as ``"PAN omega10"``) matches ours when all its words are in ours; no variant
    matches only no variant."""
    if paper is None:
        return ours is None
    if ours is None:
        return False
    return set(paper.split()) <= set(ours.split())
