"""Optimizer builder (Dassl ``dassl.optim.optimizer``)."""
from __future__ import annotations

import logging
import sys
import warnings
from contextlib import contextmanager
from typing import Iterable

import torch
import torch.nn as nn

from dassl.utils.errors import ConfigError

from .radam import RAdam

logger = logging.getLogger(__name__)

__all__ = ["AVAI_OPTIMS", "build_optimizer"]

AVAI_OPTIMS = ["adam", "amsgrad", "sgd", "rmsprop", "radam", "adamw"]


@contextmanager
def _eager_param_groups():
    """Build an optimizer without importing ``torch._dynamo`` (about 3 s on a CPU box).

    ``Optimizer.add_param_group`` is wrapped by ``torch._disable_dynamo``, which imports ``torch._dynamo`` on its
    first call only to wrap the method in ``torch._dynamo.disable`` -- a no-op outside ``torch.compile``. While the
    optimizer is constructed (plain eager code, never compiled) the wrapper's per-function cache is pointed at the
    method itself; it is removed afterwards, so every later call (and a training step, which imports dynamo
    anyway) behaves as torch ships it. An evaluation-only process therefore never imports dynamo. Nothing numeric
    changes: the same method runs on the same arguments."""
    if "torch._dynamo" in sys.modules:
        yield
        return
    fn = getattr(torch.optim.Optimizer.add_param_group, "__wrapped__", None)
    if fn is None or hasattr(fn, "__dynamo_disable"):
        yield
        return
    setattr(fn, "__dynamo_disable", fn)
    try:
        yield
    finally:
        if getattr(fn, "__dynamo_disable", None) is fn:
            delattr(fn, "__dynamo_disable")


def build_optimizer(
    model: nn.Module | Iterable, optim_cfg, param_groups: list[dict] | None = None
) -> torch.optim.Optimizer:
    """Build the optimizer named by ``optim_cfg.NAME`` (the ``OPTIM`` node).

    Args:
        model: an ``nn.Module`` (its ``parameters()``), an iterable of parameters, or a list of
            param-group dicts.
        optim_cfg: the ``OPTIM`` config node.
        param_groups: explicit param groups (overrides ``model`` and ``STAGED_LR``).

    With ``STAGED_LR``, direct children of the module named in ``NEW_LAYERS`` train at ``LR`` and all
    other parameters at ``LR * BASE_LR_MULT`` (group 0 = base layers, group 1 = new layers).

    Raises:
        ConfigError: unknown optimizer name or an inconsistent staged-LR setting.
    """
    optim = optim_cfg.NAME
    lr = optim_cfg.LR
    weight_decay = optim_cfg.WEIGHT_DECAY
    momentum = optim_cfg.MOMENTUM
    sgd_dampening = optim_cfg.SGD_DAMPNING
    sgd_nesterov = optim_cfg.SGD_NESTEROV
    rmsprop_alpha = optim_cfg.RMSPROP_ALPHA
    adam_beta1 = optim_cfg.ADAM_BETA1
    adam_beta2 = optim_cfg.ADAM_BETA2
    staged_lr = optim_cfg.STAGED_LR
    new_layers = optim_cfg.NEW_LAYERS
    base_lr_mult = optim_cfg.BASE_LR_MULT

    if optim not in AVAI_OPTIMS:
        raise ConfigError(f"OPTIM.NAME={optim!r} is not supported; choose one of: {AVAI_OPTIMS}")

    if param_groups is not None and staged_lr:
        warnings.warn("staged_lr will be ignored, if you need to use staged_lr, please bind it with param_groups "
                      "yourself.", stacklevel=2)

    if param_groups is None:
        if staged_lr:
            if not isinstance(model, nn.Module):
                raise ConfigError("OPTIM.STAGED_LR=True needs an nn.Module (not a parameter list) to find NEW_LAYERS")
            if isinstance(model, nn.DataParallel):
                model = model.module
            if isinstance(new_layers, str):
                new_layers = [new_layers]
            if not new_layers:
                raise ConfigError("OPTIM.STAGED_LR=True needs OPTIM.NEW_LAYERS (the layers that get the full LR)")
            base_params, new_params = [], []
            for name, module in model.named_children():
                if name in new_layers:
                    new_params += list(module.parameters())
                else:
                    base_params += list(module.parameters())
            param_groups = [{"params": base_params, "lr": lr * base_lr_mult}, {"params": new_params}]
        elif isinstance(model, nn.Module):
            param_groups = model.parameters()
        else:
            param_groups = model
            if isinstance(param_groups, (list, tuple)) and param_groups and isinstance(param_groups[0], dict):
                param_groups = [dict(g) for g in param_groups]

    with _eager_param_groups():
        return _construct(optim, param_groups, lr, weight_decay, momentum, sgd_dampening, sgd_nesterov,
                          rmsprop_alpha, adam_beta1, adam_beta2)


def _construct(optim, param_groups, lr, weight_decay, momentum, sgd_dampening, sgd_nesterov, rmsprop_alpha,
               adam_beta1, adam_beta2) -> torch.optim.Optimizer:
    if optim == "adam":
        optimizer = torch.optim.Adam(param_groups, lr=lr, weight_decay=weight_decay, betas=(adam_beta1, adam_beta2))
    elif optim == "amsgrad":
        optimizer = torch.optim.Adam(
            param_groups, lr=lr, weight_decay=weight_decay, betas=(adam_beta1, adam_beta2), amsgrad=True
        )
    elif optim == "sgd":
        optimizer = torch.optim.SGD(
            param_groups, lr=lr, momentum=momentum, weight_decay=weight_decay, dampening=sgd_dampening,
            nesterov=sgd_nesterov,
        )
    elif optim == "rmsprop":
        optimizer = torch.optim.RMSprop(
            param_groups, lr=lr, momentum=momentum, weight_decay=weight_decay, alpha=rmsprop_alpha
        )
    elif optim == "radam":
        optimizer = RAdam(param_groups, lr=lr, weight_decay=weight_decay, betas=(adam_beta1, adam_beta2))
    else:  # adamw
        optimizer = torch.optim.AdamW(param_groups, lr=lr, weight_decay=weight_decay, betas=(adam_beta1, adam_beta2))
    return optimizer
