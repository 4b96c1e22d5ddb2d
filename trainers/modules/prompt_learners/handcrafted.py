"""Fixed hand-written prompts (zero-shot CLIP and template ensembles): no learnable tensors."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..registry import PROMPT_LEARNER_REGISTRY
from .base import PromptLearner, PromptOutput


@PROMPT_LEARNER_REGISTRY.register()
class HandcraftedPrompts(PromptLearner):
    """T templates (``"a photo of a {}."``) x C classes, embedded once.

    ``forward()`` returns ``[T*C, L, Dt]`` prompts (template-major) with ``n_templates = T``;
    :class:`PromptedCLIP` averages the T L2-normalised features per class and renormalises (for T=1
    this equals plain normalised features).
    """

    def __init__(self, classnames: Sequence[str], clip_model: nn.Module, templates: Sequence[str] = ("a photo of a {}.",)):
        super().__init__(classnames, clip_model)
        from clip import clip

        self.templates = list(templates)
        texts = [t.format(name) for t in self.templates for name in self.classnames]
        tokenized = clip.tokenize(texts).to(clip_model.token_embedding.weight.device)  # [T*C, L]
        with torch.no_grad():
            emb = clip_model.token_embedding(tokenized).type(clip_model.dtype)  # [T*C, L, Dt]
        self.register_buffer("embedding", emb, persistent=False)
        self.register_buffer("tokenized_prompts", tokenized, persistent=False)

    def forward(self, image_features: torch.Tensor | None = None) -> PromptOutput:
        return PromptOutput(self.embedding, self.tokenized_prompts, n_templates=len(self.templates))
