"""Config keys owned by the trainers and their components."""
from __future__ import annotations


def add_trainer_cfg(cfg) -> None:
    """Add trainer/component keys to a (not frozen) Dassl config."""
