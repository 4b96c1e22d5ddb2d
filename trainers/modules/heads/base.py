"""Head interface: features -> logits, plus the head's own loss terms."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class Head(nn.Module):
    """Base class of heads.

    Constructor signature shared by all heads: ``(clip_model, classnames, **options)`` (the options dataclass
    registered with the head). Heads may own trainable parameters (DePT); the factory unfreezes
    ``head.parameters()``.

    Attributes:
        use_base_branch: whether a head with a base-class branch uses it (DePT decides it from the label spaces
            of training and evaluation; True for heads without one).
        lr_mult: learning-rate multiplier of the head's parameters (own optimiser group), None = the base LR.
        needs_local_features / uses_prompt_sets: what the head consumes (see the class attributes).
    """

    lr_mult: float | None = None
    #: True: ``forward`` takes local image features ``[B, T, D]`` (``clip.encode_image_tokens``; PLOT)
    needs_local_features: bool = False
    #: True: ``forward`` takes the features of every prompt set (``[N*C, D]``, set-major) of a learner with
    #: ``n_sets > 1``; False: their normalised mean per class
    uses_prompt_sets: bool = False

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

    def adapt_to_state_dict(self, state: dict) -> None:
        """Reshape to a checkpoint's trainable state before the strict load (default: nothing)."""

    def loss(self, output, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named loss terms for a :class:`ModelOutput` (default: cross-entropy on ``output.logits``)."""
        return {"ce_loss": nn.functional.cross_entropy(output.logits, labels)}
