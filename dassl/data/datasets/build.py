"""Dataset registry and builder."""
from __future__ import annotations

import logging

from dassl.utils.errors import ConfigError
from dassl.utils.registry import Registry

logger = logging.getLogger(__name__)

DATASET_REGISTRY = Registry("DATASET")


def build_dataset(cfg):
    """Instantiate ``DATASET_REGISTRY[cfg.DATASET.NAME](cfg)``.

    Raises:
        ConfigError: the name is not registered (the message names the closest registered name).
    """
    name = cfg.DATASET.NAME
    if name not in DATASET_REGISTRY:
        raise ConfigError(f"DATASET.NAME: {DATASET_REGISTRY.unknown_message(name)}")
    if cfg.VERBOSE:
        logger.info(f"Loading dataset: {name}")
    return DATASET_REGISTRY.get(name)(cfg)
