"""Head interface: features -> logits, plus the head's own loss terms (style.md §2.5)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class Head(nn.Module):
    """Base class of heads.

    Constructor signature shared by all heads: ``(clip_model, classnames, **options)``. Heads may own
    trainable parameters (DePT); :class:`PromptTrainer` unfreezes ``head.parameters()``.

    ``use_base_branch`` is an explicit flag (set by the trainer from the evaluation split, never from a
    dataset name) for heads that have a base-class branch.
    """

    def __init__(self, clip_model: nn.Module, classnames: Sequence[str]) -> None:
        super().__init__()
        self.use_base_branch = True
        # tau = exp(logit_scale), frozen; kept outside the state dict
        self.register_buffer("logit_scale", clip_model.logit_scale.detach().exp().float().clone(), persistent=False)

    def forward(
        self, image_features: torch.Tensor, text_features: torch.Tensor, labels: torch.Tensor | None = None
    ) -> torch.Tensor:  # pragma: no cover
        """Args: image_features ``[B, D]`` (raw projections), text_features ``[C, D]`` or ``[B, C, D]``.
        Returns logits ``[B, C]``."""
        raise NotImplementedError

    def loss(self, output, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named loss terms for a :class:`ModelOutput` (default: cross-entropy on ``output.logits``)."""
        return {"ce_loss": nn.functional.cross_entropy(output.logits, labels)}
