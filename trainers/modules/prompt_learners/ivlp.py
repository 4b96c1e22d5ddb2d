"""IVLP: independent vision-language prompting (the MaPLe repository's baseline, Khattak et al., "MaPLe:
Multi-modal Prompt Learning", CVPR 2023, arXiv:2210.03117): deep text prompts and deep vision prompts
learned independently, with no coupling function between the two towers."""
from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from dassl.utils.errors import ConfigError

from clip.model import VisionTransformer

from ..options import OptionError, Options, check_int, option
from ..registry import PROMPT_LEARNER_REGISTRY
from .base import PromptOutput
from .coop import CoOpPromptLearner, normalise_ctx_init
from .maple import keep_init_phrase

logger = logging.getLogger(__name__)

__all__ = ["IVLPOptions", "IVLPPromptLearner", "DeepVisionPrompts", "prompt_vision_width"]


def prompt_vision_width(clip_model: nn.Module, method: str) -> int:
    """D_v of a ViT image tower; a ConfigError for a ResNet (visual prompts are tokens of a ViT)."""
    if not isinstance(clip_model.visual, VisionTransformer):
        raise ConfigError(
            f"{method} visual prompts need a ViT image tower; MODEL.BACKBONE.NAME is a ResNet backbone. Use e.g. "
            "ViT-B/16" + (", or PROMPT_DEPTH_VISION 0 (text prompts only)" if method == "IVLP" else "")
        )
    return clip_model.visual.conv1.out_channels


class DeepVisionPrompts(nn.Module):
    """Deep visual prompts of their own (VPT-deep): ``vpt`` ``[n, Dv]`` appended to the ViT input (after the
    positional embedding, before ``ln_pre``) and ``vpt_deep``: J-1 tensors ``[n, Dv]`` replacing the last n tokens
    before blocks ``1..J-1`` (entries beyond the tower's depth are ignored, as in the MaPLe reference).

    fp32 parameters drawn from N(0, 0.02^2) on the CPU generator in the order ``vpt``, ``vpt_deep.0``, ... (the
    reference creates them inside its CLIP in fp32 and casts them at use; the towers cast to their dtype here).
    Depth 0 builds nothing (:meth:`prompts` gives ``(None, None)``).
    """

    def __init__(self, n_ctx: int, depth: int, width: int, init_std: float = 0.02) -> None:
        super().__init__()
        self.n_ctx, self.depth = int(n_ctx), int(depth)
        self.vpt = nn.Parameter(torch.empty(n_ctx, width).normal_(std=init_std)) if depth >= 1 else None
        self.vpt_deep = nn.ParameterList(
            [nn.Parameter(torch.empty(n_ctx, width).normal_(std=init_std)) for _ in range(max(0, depth - 1))]
        )

    def prompts(self) -> tuple[torch.Tensor | None, list[torch.Tensor] | None]:
        """(``[n, Dv]``, J-1 x ``[n, Dv]``), or ``(None, None)`` at depth 0."""
        if self.vpt is None:
            return None, None
        return self.vpt, (list(self.vpt_deep) or None)


@dataclass
class IVLPOptions(Options):
    """Options of :class:`IVLPPromptLearner` (node ``MODEL.PROMPT_LEARNER``; reference node ``TRAINER.IVLP``,
    where ``N_CTX_TEXT`` spells ``N_CTX``)."""

    n_ctx: int = option(2, "N_CTX", "N_CTX_TEXT: learnable text context vectors (the first n words of CTX_INIT)")
    ctx_init: Any = option("a photo of a", "CTX_INIT", "the text prompt's phrase (kept whole in the prompt)")
    prompt_depth_text: int = option(9, "PROMPT_DEPTH_TEXT", "text prompts at the input + before blocks 1..J-1")
    n_ctx_vision: int = option(2, "N_CTX_VISION", "visual prompt tokens (unused when PROMPT_DEPTH_VISION is 0)")
    prompt_depth_vision: int = option(9, "PROMPT_DEPTH_VISION", "visual prompts at the input + before blocks 1..J-1 "
                                      "(0: no visual prompts)")

    def __post_init__(self) -> None:
        self.ctx_init = normalise_ctx_init(self.ctx_init)
        check_int("N_CTX", self.n_ctx)
        if isinstance(self.prompt_depth_text, bool) or not isinstance(self.prompt_depth_text, int) \
                or self.prompt_depth_text < 1:
            raise OptionError("PROMPT_DEPTH_TEXT", f"must be a positive integer (IVLP always learns text prompts; "
                                                   f"for vision prompts only use the VPT trainer), got "
                                                   f"{self.prompt_depth_text!r}")
        check_int("PROMPT_DEPTH_VISION", self.prompt_depth_vision, low=0)
        check_int("N_CTX_VISION", self.n_ctx_vision, low=0)
        if self.prompt_depth_vision >= 1 and self.n_ctx_vision < 1:
            raise OptionError("N_CTX_VISION", f"must be a positive integer when PROMPT_DEPTH_VISION >= 1 (or set "
                                              f"PROMPT_DEPTH_VISION 0 for text prompts only), got {self.n_ctx_vision!r}")

    @classmethod
    def example(cls) -> "IVLPOptions":
        """Depth 2 on both sides: every deep prompt reaches a block of a 2-layer test CLIP."""
        return cls(prompt_depth_text=2, prompt_depth_vision=2)


@PROMPT_LEARNER_REGISTRY.register(options=IVLPOptions)
class IVLPPromptLearner(CoOpPromptLearner):
    """Independent deep text and vision prompts.

    Text (as MaPLe's): ``ctx`` ``[n_t, Dt]`` (CLIP dtype) from the token embeddings at positions ``1..n_t``
    of ``ctx_init`` when n_t <= 4, the prompt keeping the WHOLE phrase (``[SOS | ctx_1 ctx_2 | of a name . EOS]``
    for n_t = 2), else N(0, 0.02^2) and ``[SOS | X..X | name . EOS]``; ``compound_prompts_text``: J_t-1 fp32
    tensors ``[n_t, Dt]`` (N(0, 0.02^2)) overwriting text positions ``1..n_t`` before text blocks ``1..J_t-1``.

    Vision (:class:`DeepVisionPrompts`, in ``visual``): ``n_v`` prompt tokens of their own at the ViT input and
    new ones before blocks ``1..J_v-1``; J_v = 0: no visual prompts (the "language only" config; any backbone).

    Random draws (CPU generator), the reference's relative order (it creates the vision prompts inside its
    image tower, then the text tower's, then the prompt learner's context): ``visual.vpt``, ``visual.vpt_deep.*``,
    ``compound_prompts_text.*``, then ``ctx`` only without init words (or n_t > 4). (The reference's draws are
    interleaved with its CLIP's own initialisation, which is not re-enacted.)

    ``with_context(ctx)`` (Nemesis on the text, corruption) replaces the first-layer text ctx; deep text prompts
    are unchanged and no visual prompts are returned.
    """

    checkpoint_name = "VLPromptLearner"
    #: the trainer logs the visual prompts' L2 norms (``visual_matrix_norm``, ``visual_v{i}_norm``)
    log_visual_norms = True

    @staticmethod
    def context_length(n_ctx: int, ctx_init: str = "") -> int:
        """N_CTX_TEXT vectors whatever ``ctx_init`` says (it only initialises the first ones)."""
        return int(n_ctx)

    def __init__(
        self, classnames: Sequence[str], clip_model: nn.Module, n_ctx: int = 2, ctx_init: str = "a photo of a",
        prompt_depth_text: int = 9, n_ctx_vision: int = 2, prompt_depth_vision: int = 9, init_std: float = 0.02,
    ) -> None:
        IVLPOptions(n_ctx=n_ctx, ctx_init=ctx_init, prompt_depth_text=prompt_depth_text, n_ctx_vision=n_ctx_vision,
                    prompt_depth_vision=prompt_depth_vision)  # OptionError naming the key
        dv = prompt_vision_width(clip_model, "IVLP") if prompt_depth_vision >= 1 else 0
        ctx_init = (ctx_init or "").replace("_", " ").strip()
        device = clip_model.token_embedding.weight.device
        # the vision prompts and the deep text prompts are drawn before the context (see the class docstring)
        visual = DeepVisionPrompts(n_ctx_vision, prompt_depth_vision, dv, init_std)
        deep_text = [torch.empty(n_ctx, clip_model.ln_final.weight.shape[0]).normal_(std=init_std)
                     for _ in range(prompt_depth_text - 1)]
        # with init words (n <= 4) the reference draws NO random context: undo the CoOp constructor's draw
        no_draw = torch.random.fork_rng(devices=[]) if ctx_init and n_ctx <= 4 else nullcontext()
        with no_draw:
            super().__init__(classnames, clip_model, n_ctx=n_ctx, ctx_init="", csc=False,
                             class_token_position="end", init_std=init_std)
        if ctx_init and n_ctx <= 4:
            keep_init_phrase(self, clip_model, ctx_init, n_ctx, device, "IVLP")
        self.compound_prompts_text = nn.ParameterList([nn.Parameter(p.to(device)) for p in deep_text])
        self.visual = visual.to(device)
        self.prompt_depth_text, self.prompt_depth_vision = int(prompt_depth_text), int(prompt_depth_vision)
        self.n_ctx_vision = int(n_ctx_vision)
        self.prompts_image_tower = prompt_depth_vision >= 1  # language only: no visual prompts (any backbone)
        logger.info(f"Independent V-L design: text depth {prompt_depth_text} ({n_ctx} tokens), vision depth "
                    f"{prompt_depth_vision} ({n_ctx_vision} tokens)")

    def deep_text_prompts(self) -> list[torch.Tensor] | None:
        return list(self.compound_prompts_text) or None

    def visual_prompts(self) -> tuple[torch.Tensor | None, list[torch.Tensor] | None]:
        """The visual prompts of their own: ``[n_v, Dv]`` and J_v-1 x ``[n_v, Dv]`` (``(None, None)`` at depth 0)."""
        return self.visual.prompts()

    def forward(self, image_features: torch.Tensor | None = None) -> PromptOutput:
        visual, deep_visual = self.visual_prompts()
        return PromptOutput(
            prompts=self.assemble(self.ctx), tokenized_prompts=self.tokenized_prompts,
            deep_text_prompts=self.deep_text_prompts(), visual_prompts=visual, deep_visual_prompts=deep_visual,
        )

    def with_context(self, ctx: torch.Tensor, image_features: torch.Tensor | None = None) -> PromptOutput:
        out = super().with_context(ctx)
        out.deep_text_prompts = self.deep_text_prompts()  # [n, Dt] each, broadcast over all sequences
        return out
