"""VPT: deep visual prompt tuning (Jia et al., "Visual Prompt Tuning", ECCV 2022), as the MaPLe repository runs it
on CLIP: prompts in the image tower only, the text side fixed to hand-crafted prompts."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from ..options import OptionError, Options, check_int, option
from ..registry import PROMPT_LEARNER_REGISTRY
from .base import PromptOutput
from .coop import normalise_ctx_init
from .handcrafted import HandcraftedPrompts
from .ivlp import DeepVisionPrompts, prompt_vision_width

logger = logging.getLogger(__name__)

__all__ = ["VPTOptions", "VPTPromptLearner"]


@dataclass
class VPTOptions(Options):
    """Options of :class:`VPTPromptLearner` (node ``MODEL.PROMPT_LEARNER``; reference node ``TRAINER.VPT``)."""

    n_ctx_vision: int = option(2, "N_CTX_VISION", "visual prompt tokens")
    prompt_depth_vision: int = option(1, "PROMPT_DEPTH_VISION", "visual prompts at the input + before blocks "
                                      "1..J-1 (1: input only, shallow VPT)")
    ctx_init: Any = option("a photo of a", "CTX_INIT", 'the fixed text prompt: "<CTX_INIT> <class name>."')

    def __post_init__(self) -> None:
        self.ctx_init = normalise_ctx_init(self.ctx_init)
        if not self.ctx_init.strip():
            raise OptionError("CTX_INIT", 'must be the fixed prompt\'s phrase (e.g. "a photo of a"), got an empty value')
        check_int("N_CTX_VISION", self.n_ctx_vision)
        check_int("PROMPT_DEPTH_VISION", self.prompt_depth_vision)

    @classmethod
    def example(cls) -> "VPTOptions":
        return cls(prompt_depth_vision=2)


@PROMPT_LEARNER_REGISTRY.register(options=VPTOptions)
class VPTPromptLearner(HandcraftedPrompts):
    """Deep visual prompts (:class:`~.ivlp.DeepVisionPrompts`: ``visual.vpt`` ``[n, Dv]`` at the ViT input,
    ``visual.vpt_deep`` J-1 x ``[n, Dv]`` before blocks ``1..J-1``) and the fixed text ``"<ctx_init> <name>."``.

    The text does not depend on any trainable tensor (``text_depends_on_params = False``): :class:`PromptedCLIP`
    encodes it once and reuses the features in every step and at test time. ``context_vectors()`` is None (no text
    context); Nemesis reaches the visual prompts with ``REGULARISER.NEMESIS.TARGET vision``. Random draws: ``vpt``,
    then ``vpt_deep.*`` (N(0, 0.02^2), fp32).
    """

    prompts_image_tower = True
    text_depends_on_params = False
    #: the trainer logs the visual prompts' L2 norms (``visual_matrix_norm``, ``visual_v{i}_norm``)
    log_visual_norms = True

    def __init__(self, classnames: Sequence[str], clip_model: nn.Module, n_ctx_vision: int = 2,
                 prompt_depth_vision: int = 1, ctx_init: str = "a photo of a", init_std: float = 0.02) -> None:
        VPTOptions(n_ctx_vision=n_ctx_vision, prompt_depth_vision=prompt_depth_vision, ctx_init=ctx_init)
        dv = prompt_vision_width(clip_model, "VPT")
        phrase = ctx_init.replace("_", " ").strip()
        super().__init__(classnames, clip_model, templates=(f"{phrase} {{}}.",))
        device = clip_model.token_embedding.weight.device
        self.visual = DeepVisionPrompts(n_ctx_vision, prompt_depth_vision, dv, init_std).to(device)
        self.n_ctx_vision, self.prompt_depth_vision = int(n_ctx_vision), int(prompt_depth_vision)
        logger.info(f'VPT: {n_ctx_vision} visual prompt tokens, depth {prompt_depth_vision}; fixed text '
                    f'"{phrase} <class name>." (encoded once)')

    def visual_prompts(self) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        return self.visual.prompts()

    def forward(self, image_features: torch.Tensor | None = None) -> PromptOutput:
        out = super().forward()
        out.visual_prompts, out.deep_visual_prompts = self.visual_prompts()
        return out
