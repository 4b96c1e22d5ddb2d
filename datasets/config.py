"""Config keys owned by the dataset readers."""
from __future__ import annotations


def add_dataset_cfg(cfg) -> None:
    """Add dataset keys to a (not frozen) Dassl config."""
    # Which classes to keep: all | base (first ceil(n/2) labels) | new (the rest, relabelled from 0)
    cfg.DATASET.SUBSAMPLE_CLASSES = "all"
