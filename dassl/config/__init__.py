"""Config (Dassl ``dassl.config``): ``get_cfg_default``, ``clean_cfg`` and engine-level validation."""
from __future__ import annotations

from yacs.config import CfgNode

from dassl.utils.errors import ConfigError

from .defaults import _C as cfg_default

__all__ = ["get_cfg_default", "clean_cfg", "validate_cfg", "cfg_keys", "CfgNode"]


def get_cfg_default() -> CfgNode:
    """A fresh (deep) copy of the default config tree."""
    return cfg_default.clone()


def clean_cfg(cfg: CfgNode, trainer: str) -> None:
    """Delete every child of ``cfg.TRAINER`` except ``NAME`` and ``trainer.upper()`` (DePT's helper)."""
    keep = {"NAME", trainer.upper()}
    for key in list(cfg.TRAINER.keys()):
        if key not in keep:
            del cfg.TRAINER[key]


def cfg_keys(cfg: CfgNode, prefix: str = "") -> list[str]:
    """All dotted leaf keys of ``cfg``."""
    keys = []
    for k, v in cfg.items():
        full = f"{prefix}{k}"
        if isinstance(v, CfgNode):
            keys.extend(cfg_keys(v, full + "."))
        else:
            keys.append(full)
    return keys


_CHOICES = {
    "INPUT.INTERPOLATION": ("bilinear", "bicubic", "nearest"),
    "OPTIM.NAME": ("adam", "amsgrad", "sgd", "rmsprop", "radam", "adamw"),
    "OPTIM.LR_SCHEDULER": ("single_step", "multi_step", "cosine"),
    "OPTIM.WARMUP_TYPE": ("linear", "constant"),
    "TEST.FINAL_MODEL": ("last_step", "best_val"),
    "DATALOADER.TRAIN_X.SAMPLER": ("RandomSampler", "SequentialSampler"),
    "DATALOADER.TEST.SAMPLER": ("RandomSampler", "SequentialSampler"),
}


def _get(cfg: CfgNode, dotted: str):
    node = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def validate_cfg(cfg: CfgNode) -> None:
    """Check engine-level values once, raising :class:`ConfigError` that names the key.

    Raises:
        ConfigError: an unknown choice or an impossible number.
    """
    for key, choices in _CHOICES.items():
        value = _get(cfg, key)
        if value not in choices:
            raise ConfigError(f"{key}={value!r} is not supported; choose one of: {', '.join(choices)}")
    for key in ("OPTIM.MAX_EPOCH", "DATALOADER.TRAIN_X.BATCH_SIZE", "DATALOADER.TEST.BATCH_SIZE"):
        value = _get(cfg, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "OPTIM.MAX_EPOCH" else 1):
            kind = "non-negative" if key == "OPTIM.MAX_EPOCH" else "positive"
            raise ConfigError(f"{key}={value!r} must be a {kind} integer")
    if not isinstance(cfg.TRAIN.PRINT_FREQ, int) or cfg.TRAIN.PRINT_FREQ < 1:
        raise ConfigError(f"TRAIN.PRINT_FREQ={cfg.TRAIN.PRINT_FREQ!r} must be a positive integer")
    iters = cfg.TRAIN.get("RESUME_EVERY_ITERS", 0)
    if not isinstance(iters, int) or isinstance(iters, bool) or iters < 0:
        raise ConfigError(f"TRAIN.RESUME_EVERY_ITERS={iters!r} must be a non-negative integer (0 = off)")
    minutes = cfg.TRAIN.get("RESUME_EVERY_MINUTES", 0.0)
    if not isinstance(minutes, (int, float)) or isinstance(minutes, bool) or not minutes >= 0:
        raise ConfigError(f"TRAIN.RESUME_EVERY_MINUTES={minutes!r} must be a non-negative number (0 = off)")
    if cfg.DATALOADER.NUM_WORKERS < 0:
        raise ConfigError(f"DATALOADER.NUM_WORKERS={cfg.DATALOADER.NUM_WORKERS!r} must be >= 0")
    if len(cfg.INPUT.SIZE) != 2:
        raise ConfigError(f"INPUT.SIZE={cfg.INPUT.SIZE!r} must hold two integers (height, width)")
    if cfg.OPTIM.STAGED_LR and not cfg.OPTIM.NEW_LAYERS:
        raise ConfigError("OPTIM.STAGED_LR=True needs OPTIM.NEW_LAYERS (the layers that get the full LR)")
    if cfg.TEST.SPLIT not in ("val", "test"):
        raise ConfigError(f"TEST.SPLIT={cfg.TEST.SPLIT!r} must be 'val' or 'test'")
