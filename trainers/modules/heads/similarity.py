"""CLIP's cosine-similarity head: logits = tau * <v/|v|, t/|t|>."""
from __future__ import annotations

import torch

from ..registry import HEAD_REGISTRY
from .base import Head


@HEAD_REGISTRY.register()
class Similarity(Head):
    """tau * cosine similarity (CLIP's zero-shot logits); no parameters.

    Args of ``forward``: image_features ``[B, D]``, text_features ``[C, D]`` (shared) or ``[B, C, D]``
    (per image, CoCoOp). Returns ``[B, C]`` in the features' dtype.
    """

    def forward(self, image_features, text_features, labels=None):
        image_features = image_features / image_features.norm(dim=-1, keepdim=True)
        text_features = text_features / text_features.norm(dim=-1, keepdim=True)
        scale = self.logit_scale.to(image_features.dtype)
        if text_features.dim() == 3:
            return scale * torch.einsum("bd,bcd->bc", image_features, text_features)  # [B, C]
        return scale * image_features @ text_features.t()  # [B, C]
