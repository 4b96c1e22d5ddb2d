"""Fixed hand-written prompts (zero-shot CLIP and template ensembles): no learnable tensors."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from clip import clip

from ..options import Options, OptionError, check_bool, option
from ..registry import PROMPT_LEARNER_REGISTRY
from ..templates import dataset_template, ensemble_templates
from .base import PromptLearner, PromptOutput


@dataclass
class HandcraftedOptions(Options):
    """Options of :class:`HandcraftedPrompts` (node ``MODEL.PROMPT_LEARNER``)."""

    template: str = option("", "TEMPLATE", '"" = the per-dataset template of trainers/data/templates.json')
    ensemble: bool = option(False, "ENSEMBLE", "the 7-template ensemble (+ the dataset's template)")

    def __post_init__(self) -> None:
        if not isinstance(self.template, str) or (self.template and "{}" not in self.template):
            raise OptionError("TEMPLATE", f'must be a string with "{{}}" for the class name, got {self.template!r}')
        check_bool("ENSEMBLE", self.ensemble)

    def constructor_kwargs(self, cfg) -> dict[str, Any]:
        name = cfg.DATASET.NAME
        if self.ensemble:
            return {"templates": ensemble_templates(name, self.template)}
        return {"templates": [dataset_template(name, self.template)]}


@PROMPT_LEARNER_REGISTRY.register(options=HandcraftedOptions)
class HandcraftedPrompts(PromptLearner):
    """T templates (``"a photo of a {}."``) x C classes, embedded once.

    ``forward()`` returns ``[T*C, L, Dt]`` prompts (template-major) with ``n_templates = T``;
    :class:`PromptedCLIP` averages the T L2-normalised features per class and renormalises (for T=1
    this equals plain normalised features).
    """

    def __init__(self, classnames: Sequence[str], clip_model: nn.Module, templates: Sequence[str] = ("a photo of a {}.",)):
        super().__init__(classnames, clip_model)
        self.templates = list(templates)
        texts = [t.format(name) for t in self.templates for name in self.classnames]
        tokenized = clip.tokenize(texts).to(clip_model.token_embedding.weight.device)  # [T*C, L]
        with torch.no_grad():
            emb = clip_model.token_embedding(tokenized).type(clip_model.dtype)  # [T*C, L, Dt]
        self.register_buffer("embedding", emb, persistent=False)
        self.register_buffer("tokenized_prompts", tokenized, persistent=False)

    text_depends_on_params = False

    def forward(self, image_features: torch.Tensor | None = None) -> PromptOutput:
        return PromptOutput(self.embedding, self.tokenized_prompts, n_templates=len(self.templates))
