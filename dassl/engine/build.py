"""Trainer registry and builder (Dassl ``dassl.engine.build``)."""
from __future__ import annotations

import logging

from dassl.utils.errors import ConfigError
from dassl.utils.registry import Registry

logger = logging.getLogger(__name__)

__all__ = ["TRAINER_REGISTRY", "build_trainer", "trainer_class"]

TRAINER_REGISTRY = Registry("TRAINER")


def trainer_class(cfg):
    """The registered class named by ``cfg.TRAINER.NAME``.

    Raises:
        ConfigError: the name is empty or not registered (the message names the closest trainer).
    """
    name = cfg.TRAINER.NAME
    if not name:
        raise ConfigError(
            f"TRAINER.NAME is empty: pass --trainer NAME (registered: {', '.join(sorted(TRAINER_REGISTRY))})"
        )
    if name not in TRAINER_REGISTRY:
        raise ConfigError(f"TRAINER.NAME: {TRAINER_REGISTRY.unknown_message(name)}")
    return TRAINER_REGISTRY.get(name)


def build_trainer(cfg):
    """Instantiate ``TRAINER_REGISTRY[cfg.TRAINER.NAME](cfg)`` (errors: :func:`trainer_class`)."""
    cls = trainer_class(cfg)
    if cfg.VERBOSE:
        logger.info(f"Loading trainer: {cfg.TRAINER.NAME}")
    return cls(cfg)
