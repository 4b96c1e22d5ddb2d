"""MaPLe's deep multimodal prompts (Khattak et al., "MaPLe: Multi-modal Prompt Learning", CVPR 2023,
arXiv:2210.03117)."""
from __future__ import annotations

import copy
import logging
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from dassl.utils.errors import ConfigError

from clip.model import VisionTransformer

from ..options import Options, check_int, option
from ..registry import PROMPT_LEARNER_REGISTRY
from .base import PromptOutput
from .coop import CoOpPromptLearner, _tokenize, normalise_ctx_init

logger = logging.getLogger(__name__)


def vision_width(clip_model: nn.Module) -> int:
    """D_v of a ViT image tower; ConfigError for a ResNet (MaPLe prompts need a ViT)."""
    if not isinstance(clip_model.visual, VisionTransformer):
        raise ConfigError(
            "MaPLe needs a ViT image tower (visual prompts are tokens); MODEL.BACKBONE.NAME is a ResNet backbone. "
            "Use e.g. ViT-B/16."
        )
    return clip_model.visual.conv1.out_channels


def keep_init_phrase(learner: CoOpPromptLearner, clip_model: nn.Module, ctx_init: str, n_ctx: int,
                     device: torch.device, method: str) -> None:
    """MaPLe's and IVLP's initialisation from words (n <= 4): the first ``n_ctx`` token embeddings of ``ctx_init``
    become the learnable ``ctx`` and the WHOLE phrase stays in every prompt (``"<ctx_init> <class>."``: the words
    after the first n are fixed suffix tokens)."""
    dtype = clip_model.dtype
    embed = clip_model.token_embedding
    with torch.no_grad():
        init_emb = embed(_tokenize([ctx_init]).to(device)).type(dtype)  # [1, L, Dt]
        learner.ctx.copy_(init_emb[0, 1 : 1 + n_ctx])  # the first n words become learnable
        tokenized = _tokenize([f"{ctx_init} {name}." for name in learner.classnames]).to(device)  # [C, L]
        emb = embed(tokenized).type(dtype)  # [C, L, Dt]
    learner.token_prefix = emb[:, :1].clone()  # SOS
    learner.token_suffix = emb[:, 1 + n_ctx :].clone()  # remaining init words, name, ".", EOS, pad
    learner.tokenized_prompts = tokenized
    logger.info(f'{method}: first {n_ctx} tokens of "{ctx_init}" are learnable; the phrase stays in the prompt')


@dataclass
class MaPLeOptions(Options):
    """Options of :class:`MaPLePromptLearner` (node ``MODEL.PROMPT_LEARNER``)."""

    n_ctx: int = option(2, "N_CTX", "n: the first n words of CTX_INIT become learnable")
    ctx_init: Any = option("a photo of a", "CTX_INIT", "the phrase (kept whole in the prompt)")
    prompt_depth: int = option(9, "PROMPT_DEPTH", "J: prompts at the input + before blocks 1..J-1 (both towers)")

    def __post_init__(self) -> None:
        self.ctx_init = normalise_ctx_init(self.ctx_init)
        check_int("PROMPT_DEPTH", self.prompt_depth)
        check_int("N_CTX", self.n_ctx)

    @classmethod
    def example(cls) -> "MaPLeOptions":
        """Depth 2: every deep prompt reaches a block of a 2-layer test CLIP (deeper entries are ignored)."""
        return cls(prompt_depth=2)


@PROMPT_LEARNER_REGISTRY.register(options=MaPLeOptions)
class MaPLePromptLearner(CoOpPromptLearner):
    """Deep language prompts coupled to deep visual prompts.

    * ``ctx`` ``[n, Dt]`` (CLIP dtype): with ``ctx_init`` and n <= 4, the token embeddings at positions ``1..n``
      of ``ctx_init``, and the prompt keeps the WHOLE phrase (n=2, "a photo of a": ``[SOS | ctx_1 ctx_2 | of a
      name . EOS]``, as the MaPLe reference); otherwise N(0, 0.02^2) and ``[SOS | X..X | name . EOS]``.
    * ``compound_prompts_text``: J-1 tensors ``[n, Dt]`` (fp32, N(0, 0.02^2)) overwriting text positions ``1..n``
      before text blocks ``1..J-1``.
    * ``proj``: Linear(Dt -> Dv) (CLIP dtype) giving the first-layer visual prompts ``proj(ctx)`` ``[n, Dv]``
      appended to the ViT input; ``compound_prompt_projections``: J-1 Linear(Dt -> Dv) (fp32), deep copies of ONE
      initialised layer (identical initial weights, as the MaPLe reference), giving the deep visual prompts
      that replace the last n visual tokens before blocks ``1..J-1``.

    Dimensions come from the model (no hard-coded 512/768); casts are dtype-aware (fp16, fp32, amp).
    Random draws (global torch CPU generator) in the reference's order: ``ctx`` only without init words (or
    n > 4), then ``proj``'s default init, the J-1 deep text prompts, the one projection that is copied.
    ``forward()`` returns a :class:`PromptOutput` with all four prompt kinds. ``with_context(ctx)`` (Nemesis)
    replaces the first-layer text ctx only: deep prompts are unchanged and no visual prompts are returned.
    """

    prompts_image_tower = True
    checkpoint_name = "MultiModalPromptLearner"

    @staticmethod
    def context_length(n_ctx: int, ctx_init: str = "") -> int:
        """N_CTX vectors whatever ``ctx_init`` says (it only initialises the first ones; pre-flight checks)."""
        return int(n_ctx)

    def __init__(
        self, classnames: Sequence[str], clip_model: nn.Module, n_ctx: int = 2, ctx_init: str = "a photo of a",
        prompt_depth: int = 9, init_std: float = 0.02,
    ) -> None:
        MaPLeOptions(n_ctx=n_ctx, ctx_init=ctx_init, prompt_depth=prompt_depth)  # OptionError naming the key
        dv = vision_width(clip_model)
        ctx_init = (ctx_init or "").replace("_", " ").strip()
        # RNG parity with the reference: with init words (n <= 4) it draws NO random context, so the draw the
        # CoOp constructor makes for its placeholder context is undone (fork_rng restores the CPU generator).
        no_draw = torch.random.fork_rng(devices=[]) if ctx_init and n_ctx <= 4 else nullcontext()
        with no_draw:
            super().__init__(classnames, clip_model, n_ctx=n_ctx, ctx_init="", csc=False,
                             class_token_position="end", init_std=init_std)
        dtype = clip_model.dtype
        device = self.ctx.device
        if ctx_init and n_ctx <= 4:
            keep_init_phrase(self, clip_model, ctx_init, n_ctx, device, "MaPLe")
        self.prompt_depth = prompt_depth
        self.proj = nn.Linear(self.ctx_dim, dv).to(device=device, dtype=dtype)
        self.compound_prompts_text = nn.ParameterList(
            [nn.Parameter(torch.empty(n_ctx, self.ctx_dim).normal_(std=init_std).to(device))  # CPU draws, as the
             for _ in range(prompt_depth - 1)]  # reference (built on CPU, moved later)
        )
        single = nn.Linear(self.ctx_dim, dv).to(device)
        self.compound_prompt_projections = nn.ModuleList([copy.deepcopy(single) for _ in range(prompt_depth - 1)])
        logger.info(f"MaPLe design: multi-modal prompt learning, depth {prompt_depth}, {n_ctx} context tokens")

    def deep_text_prompts(self) -> list[torch.Tensor]:
        return list(self.compound_prompts_text)

    def visual_prompts(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``proj(ctx)`` ``[n, Dv]`` and the J-1 deep visual prompts ``[n, Dv]``."""
        visual = self.proj(self.ctx.to(self.proj.weight.dtype))  # [n, Dv]
        deep_visual = [layer(p) for layer, p in zip(self.compound_prompt_projections, self.deep_text_prompts())]
        return visual, deep_visual

    def forward(self, image_features: torch.Tensor | None = None) -> PromptOutput:
        deep_text = self.deep_text_prompts()  # J-1 x [n, Dt]
        visual, deep_visual = self.visual_prompts()  # [n, Dv], J-1 x [n, Dv]
        return PromptOutput(
            prompts=self.assemble(self.ctx), tokenized_prompts=self.tokenized_prompts, deep_text_prompts=deep_text,
            visual_prompts=visual, deep_visual_prompts=deep_visual,
        )

    def with_context(self, ctx: torch.Tensor, image_features: torch.Tensor | None = None) -> PromptOutput:
        out = super().with_context(ctx)
        out.deep_text_prompts = self.deep_text_prompts()  # [n, Dt] each, broadcast over all sequences
        return out
