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


#: Upper bound of OPTIM.MAX_EPOCH (larger values are typos; the LR schedulers overflow near 2**31).
MAX_EPOCH_LIMIT = 100_000


def _check_number(cfg: CfgNode, key: str, positive: bool) -> None:
    """A finite number that is > 0 (``positive``) or >= 0; absent keys are skipped."""
    import math

    node = cfg
    for part in key.split(".")[:-1]:
        node = node.get(part)
        if node is None:
            return
    value = node.get(key.split(".")[-1])
    if value is None:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > 0 if positive else value >= 0)
    if not ok:
        kind = "a positive" if positive else "a non-negative"
        raise ConfigError(f"{key}={value!r} must be {kind} finite number")


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
    size = cfg.INPUT.SIZE
    if (len(size) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in size)):
        raise ConfigError(f"INPUT.SIZE={size!r} must hold two positive integers (height, width), e.g. \"(224, 224)\"")
    if cfg.OPTIM.MAX_EPOCH > MAX_EPOCH_LIMIT:
        raise ConfigError(
            f"OPTIM.MAX_EPOCH={cfg.OPTIM.MAX_EPOCH} is implausibly large (limit {MAX_EPOCH_LIMIT:,}): "
            "set the number of epochs to train"
        )
    _check_number(cfg, "OPTIM.LR", positive=True)
    for key in ("OPTIM.WARMUP_CONS_LR", "OPTIM.WARMUP_MIN_LR", "OPTIM.WEIGHT_DECAY", "OPTIM.MOMENTUM"):
        _check_number(cfg, key, positive=False)
    warmup = cfg.OPTIM.WARMUP_EPOCH
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < -1:
        raise ConfigError(
            f"OPTIM.WARMUP_EPOCH={warmup!r} must be a number of epochs >= 0 (0 or the default -1: no warm-up)"
        )
    if cfg.OPTIM.STAGED_LR and not cfg.OPTIM.NEW_LAYERS:
        raise ConfigError("OPTIM.STAGED_LR=True needs OPTIM.NEW_LAYERS (the layers that get the full LR)")
    if cfg.TEST.SPLIT not in ("val", "test"):
        raise ConfigError(f"TEST.SPLIT={cfg.TEST.SPLIT!r} must be 'val' or 'test'")
