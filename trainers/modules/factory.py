"""The model factory (open_clip's ``create_model``): config -> (PromptedCLIP, regularisers), no trainer needed.

``build_prompted_clip(cfg, classnames, device)`` is what trainers, tools, benches and tests call. It reads only
the canonical nodes (filled by ``trainers.config.resolve_cfg``): ``MODEL.BACKBONE.NAME``, ``TRAINER.PREC``,
``MODEL.PROMPT_LEARNER.*``, ``MODEL.HEAD.*``, ``REGULARISERS.NAMES`` and ``REGULARISER.<NAME>.*``.
"""
from __future__ import annotations

import logging
from typing import Callable, Sequence

import torch
from torch import nn

from clip import clip
from clip.config import check_input_cfg
from dassl.utils.errors import ConfigError

from .prompted_clip import PromptedCLIP
from .registry import HEAD_REGISTRY, PROMPT_LEARNER_REGISTRY, REGULARISER_REGISTRY
from .regularisers.base import Regulariser

logger = logging.getLogger(__name__)

__all__ = ["build_prompted_clip", "validate_components", "freeze_except", "component_names"]


def freeze_except(model: nn.Module, trainable: Sequence[nn.Module]) -> tuple[int, int]:
    """Freeze every parameter of ``model``, then unfreeze those of ``trainable``.

    Returns:
        (number of trainable parameters, total number of parameters).
    """
    model.requires_grad_(False)
    for module in trainable:
        module.requires_grad_(True)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_total = sum(p.numel() for p in model.parameters())
    return n_train, n_total


def component_names(cfg) -> tuple[str, str, list[str]]:
    """(learner, head, regularisers) named by the canonical config."""
    learner = cfg.MODEL.PROMPT_LEARNER.NAME or "CoOpPromptLearner"
    head = cfg.MODEL.HEAD.NAME or "Similarity"
    return learner, head, list(dict.fromkeys(cfg.REGULARISERS.NAMES))


def validate_components(cfg) -> None:
    """Every named component exists and its options validate (ConfigError naming the key). Needs no data/CLIP."""
    learner, head, regs = component_names(cfg)
    for key, registry, names in (("MODEL.PROMPT_LEARNER.NAME", PROMPT_LEARNER_REGISTRY, [learner]),
                                 ("MODEL.HEAD.NAME", HEAD_REGISTRY, [head]),
                                 ("REGULARISERS.NAMES", REGULARISER_REGISTRY, regs)):
        for name in names:
            if name not in registry:
                raise ConfigError(f"{key}: {registry.unknown_message(name)}")
            registry.options(name, cfg)


def build_prompted_clip(cfg, classnames: Sequence[str], device: torch.device | str,
                        clip_model: nn.Module | None = None,
                        after_learner: Callable[[nn.Module, nn.Module], None] | None = None,
                        ) -> tuple[PromptedCLIP, list[Regulariser]]:
    """Build the frozen CLIP x learner x head and the regularisers (set up, on ``device``).

    Args:
        cfg: a resolved config (``dassl.config.setup_cfg``).
        classnames: the C class names, in label order.
        device: where the model lives.
        clip_model: an already loaded CLIP to use instead of ``clip.load_clip(MODEL.BACKBONE.NAME, TRAINER.PREC)``.
        after_learner: called as ``after_learner(learner, clip_model)`` between the learner and the head (a
            trainer's hook, e.g. the KgCoOp reference's random-number consumption).

    Returns:
        (model, regularisers): only the learner's and the head's parameters require grad.
    """
    device = torch.device(device)
    learner_name, head_name, reg_names = component_names(cfg)
    if clip_model is None:
        logger.info(f"Loading CLIP (backbone: {cfg.MODEL.BACKBONE.NAME})")
        clip_model = clip.load_clip(
            cfg.MODEL.BACKBONE.NAME, precision=cfg.TRAINER.PREC, device=device, pretrained=cfg.MODEL.BACKBONE.PRETRAINED
        )
        from dassl.engine.preflight import check_finite_backbone

        check_finite_backbone(clip_model, cfg.MODEL.BACKBONE.NAME)  # NaN/Inf weights: error, not chance accuracy
        check_input_cfg(cfg.INPUT, clip_model)  # INPUT.* vs the backbone's preprocessing (warnings; size error)
    logger.info("Building custom CLIP")
    learner = PROMPT_LEARNER_REGISTRY.build(learner_name, cfg, classnames, clip_model).to(device)
    if after_learner is not None:
        after_learner(learner, clip_model)
    head = HEAD_REGISTRY.build(head_name, cfg, clip_model, classnames).to(device)
    model = PromptedCLIP(clip_model, learner, head, text_chunk=int(cfg.MODEL.PROMPT_LEARNER.TEXT_CHUNK or 0),
                         text_checkpoint=bool(cfg.MODEL.PROMPT_LEARNER.get("TEXT_CHECKPOINT", False)))
    logger.info("Turning off gradients in both the image and the text encoder")
    n_train, n_total = freeze_except(model, [learner, head])
    logger.info(f"Parameters to be updated: {sorted(n for n, p in model.named_parameters() if p.requires_grad)}")
    logger.info(f"# params: trainable {n_train:,} / total {n_total:,}")
    regularisers = []
    for name in reg_names:
        reg = REGULARISER_REGISTRY.build(name, cfg)
        reg.setup(model, classnames)
        regularisers.append(reg.to(device))
    return model, regularisers
