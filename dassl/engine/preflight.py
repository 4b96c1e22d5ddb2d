"""Checks that run before anything is written into the output folder (and before the dataset or CLIP is read).

``train.py`` calls :func:`preflight` right after the config is built and frozen; a failing check raises a
:class:`~dassl.utils.errors.UsageError` (one ``error:`` line, exit 2) and leaves an existing run folder untouched.
Add a check here when it needs neither the dataset nor the CLIP weights; checks that need them stay where the
data is read, but must still run before the first write into ``OUTPUT_DIR``.
"""
from __future__ import annotations

import argparse

from dassl.utils.errors import ConfigError


def check_trainer(cfg) -> None:
    """The trainer name exists and its ``check_cfg`` accepts the config (trainer and component options)."""
    from .build import TRAINER_REGISTRY

    name = cfg.TRAINER.NAME
    if not name:
        raise ConfigError(
            f"TRAINER.NAME is empty: pass --trainer NAME (registered: {', '.join(sorted(TRAINER_REGISTRY))})"
        )
    if name not in TRAINER_REGISTRY:
        raise ConfigError(f"TRAINER.NAME: {TRAINER_REGISTRY.unknown_message(name)}")
    cls = TRAINER_REGISTRY.get(name)
    validate = getattr(cls, "validate_cfg", None)  # class-level check (prompt trainers)
    if callable(validate):
        validate(cfg)
    else:  # check_cfg only reads class attributes and the config: run it on an unbuilt instance
        cls.check_cfg(object.__new__(cls), cfg)


def preflight(cfg, args: argparse.Namespace | None = None) -> None:
    """Every check that needs neither the dataset nor CLIP. Must not write anything anywhere."""
    check_trainer(cfg)
