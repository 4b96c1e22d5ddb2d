"""Optimizer builder (Dassl ``dassl.optim.optimizer``)."""
from __future__ import annotations

import logging
import warnings
from typing import Iterable

import torch
import torch.nn as nn

from dassl.utils.errors import ConfigError

from .radam import RAdam

logger = logging.getLogger(__name__)

__all__ = ["AVAI_OPTIMS", "build_optimizer"]

AVAI_OPTIMS = ["adam", "amsgrad", "sgd", "rmsprop", "radam", "adamw"]


_DYNAMO_WRAPPED = ("add_param_group", "zero_grad", "state_dict", "load_state_dict")
_EAGER_CLASSES: dict[type, type] = {}


def _use_grad_layer(fn):
    """``(wrapper, raw)`` when ``fn`` (possibly under torch's profiling hook) is torch's ``_use_grad`` step wrapper,
    else None."""
    f = fn
    while hasattr(f, "__wrapped__"):
        if getattr(getattr(f, "__code__", None), "co_name", "") == "_use_grad":
            raw = f.__wrapped__
            while hasattr(raw, "__wrapped__"):
                raw = raw.__wrapped__
            return f, raw
        f = f.__wrapped__
    return None


def eager_optimizer_class(cls: type) -> type:
    """``cls`` without the ``torch._dynamo`` import of its eager calls (about 3 s of every training process).

    torch wraps ``Optimizer.add_param_group``, ``zero_grad``, ``state_dict`` and ``load_state_dict`` in
    ``torch._disable_dynamo`` and each built-in ``step`` in ``_use_grad``; both import ``torch._dynamo`` when first
    called, only to mark the code as not-to-be-compiled (a no-op in eager mode, ``graph_break`` included). The
    subclass calls the same undecorated methods, with ``step`` under the same grad mode as ``_use_grad`` sets
    (``defaults["differentiable"]``): the same operations on the same tensors, bit-identical updates and state dicts.
    It keeps the class name (``repr``), and ``isinstance(opt, cls)`` holds. This codebase never compiles the
    optimiser; a ``torch.compile`` user would pass the plain torch class."""
    if cls in _EAGER_CLASSES:
        return _EAGER_CLASSES[cls]
    namespace: dict = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
    for name in _DYNAMO_WRAPPED:
        raw = getattr(getattr(torch.optim.Optimizer, name), "__wrapped__", None)
        if raw is not None and getattr(cls, name) is getattr(torch.optim.Optimizer, name):
            namespace[name] = raw
    layer = _use_grad_layer(cls.step)
    if layer is not None:
        raw_step = layer[1]

        def step(self, *args, **kwargs):
            prev = torch.is_grad_enabled()
            try:
                torch.set_grad_enabled(self.defaults["differentiable"])
                return raw_step(self, *args, **kwargs)
            finally:
                torch.set_grad_enabled(prev)

        step.__doc__ = raw_step.__doc__
        namespace["step"] = step
    eager = type(cls.__name__, (cls,), namespace)
    _EAGER_CLASSES[cls] = eager
    return eager


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

    return _construct(optim, param_groups, lr, weight_decay, momentum, sgd_dampening, sgd_nesterov,
                      rmsprop_alpha, adam_beta1, adam_beta2)


def _construct(optim, param_groups, lr, weight_decay, momentum, sgd_dampening, sgd_nesterov, rmsprop_alpha,
               adam_beta1, adam_beta2) -> torch.optim.Optimizer:
    if optim == "adam":
        optimizer = eager_optimizer_class(torch.optim.Adam)(param_groups, lr=lr, weight_decay=weight_decay,
                                                            betas=(adam_beta1, adam_beta2))
    elif optim == "amsgrad":
        optimizer = eager_optimizer_class(torch.optim.Adam)(
            param_groups, lr=lr, weight_decay=weight_decay, betas=(adam_beta1, adam_beta2), amsgrad=True
        )
    elif optim == "sgd":
        optimizer = eager_optimizer_class(torch.optim.SGD)(
            param_groups, lr=lr, momentum=momentum, weight_decay=weight_decay, dampening=sgd_dampening,
            nesterov=sgd_nesterov,
        )
    elif optim == "rmsprop":
        optimizer = eager_optimizer_class(torch.optim.RMSprop)(
            param_groups, lr=lr, momentum=momentum, weight_decay=weight_decay, alpha=rmsprop_alpha
        )
    elif optim == "radam":
        optimizer = eager_optimizer_class(RAdam)(param_groups, lr=lr, weight_decay=weight_decay,
                                                 betas=(adam_beta1, adam_beta2))
    else:  # adamw
        optimizer = eager_optimizer_class(torch.optim.AdamW)(param_groups, lr=lr, weight_decay=weight_decay,
                                                             betas=(adam_beta1, adam_beta2))
    return optimizer
