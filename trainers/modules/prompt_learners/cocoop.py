"""CoCoOp's image-conditioned context (Zhou et al., "Conditional Prompt Learning for Vision-Language Models",
CVPR 2022, arXiv:2203.05557)."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from ..options import Options, option
from ..registry import PROMPT_LEARNER_REGISTRY
from .base import PromptOutput
from .coop import CoOpPromptLearner, check_n_ctx, normalise_ctx_init


@dataclass
class CoCoOpOptions(Options):
    """Options of :class:`CoCoOpPromptLearner` (node ``MODEL.PROMPT_LEARNER``; no CSC, class token at the end)."""

    n_ctx: int = option(16, "N_CTX", "number of context tokens M (ignored when CTX_INIT is given)")
    ctx_init: Any = option("", "CTX_INIT", 'initialisation words, e.g. "a photo of a"')

    def __post_init__(self) -> None:
        self.ctx_init = normalise_ctx_init(self.ctx_init)
        check_n_ctx(self.n_ctx, self.ctx_init)


@PROMPT_LEARNER_REGISTRY.register(options=CoCoOpOptions)
class CoCoOpPromptLearner(CoOpPromptLearner):
    """Shared context ``ctx`` ``[M, Dt]`` plus a meta-net bias per image.

    ``pi`` = Linear(D -> D/16), ReLU, Linear(D/16 -> Dt) (PyTorch default init; in CLIP's dtype, i.e. fp16
    under PREC fp16). For image i with L2-normalised feature ``v_i``: ``ctx_i = ctx + pi(v_i)`` (the same bias
    on all M tokens); class c's prompt is ``[SOS | ctx_i | name_c . EOS]`` (class at the end, no CSC).

    ``forward(image_features [B, D])`` returns prompts ``[B, C, L, Dt]`` with ``tokenized_prompts`` ``[C, L]``.
    ``with_context(ctx, image_features=None)``: an override SHARED context (``[M, Dt]`` or a stack ``[K, M, Dt]``)
    to which the meta-net bias of each image is added (Nemesis PAN: the shared context is corrupted BEFORE the
    bias is added); returns ``[B, C, L, Dt]`` or ``[K*B, C, L, Dt]`` (context-major). Without image features it
    falls back to the unconditioned prompts ``[C, L, Dt]`` / ``[K*C, L, Dt]``.

    Args:
        classnames, clip_model: as :class:`CoOpPromptLearner`.
        n_ctx: M (ignored when ``ctx_init`` is given: M = its word count).
        ctx_init: e.g. "a photo of a" (the ctxv1 configs).
    """

    image_conditioned = True

    def __init__(
        self, classnames: Sequence[str], clip_model: nn.Module, n_ctx: int = 16, ctx_init: str = "",
        init_std: float = 0.02,
    ) -> None:
        super().__init__(classnames, clip_model, n_ctx=n_ctx, ctx_init=ctx_init, csc=False,
                         class_token_position="end", init_std=init_std)
        vis_dim = clip_model.text_projection.shape[1]  # D, the joint embedding width (= visual.output_dim)
        hidden = max(1, vis_dim // 16)
        self.meta_net = nn.Sequential(OrderedDict([
            ("linear1", nn.Linear(vis_dim, hidden)),
            ("relu", nn.ReLU(inplace=True)),
            ("linear2", nn.Linear(hidden, self.ctx_dim)),
        ])).to(device=self.ctx.device, dtype=clip_model.dtype)

    def bias(self, image_features: torch.Tensor) -> torch.Tensor:
        """Meta-net bias ``[B, Dt]`` from raw projected image features ``[B, D]`` (normalised here; local features
        ``[B, T, D]`` of a PLOT head: token 0, the global feature)."""
        if image_features.dim() == 3:
            image_features = image_features[:, 0]
        v = image_features / image_features.norm(dim=-1, keepdim=True)
        return self.meta_net(v.to(self.meta_net.linear1.weight.dtype))

    def forward(self, image_features: torch.Tensor | None = None) -> PromptOutput:
        if image_features is None:  # unconditioned prompts [C, L, Dt] (the shared context alone)
            return super().forward()
        ctx = self.ctx.unsqueeze(0) + self.bias(image_features).unsqueeze(1).to(self.ctx.dtype)  # [B, M, Dt]
        return PromptOutput(prompts=self.assemble(ctx), tokenized_prompts=self.tokenized_prompts)  # [B, C, L, Dt]

    def with_context(self, ctx: torch.Tensor, image_features: torch.Tensor | None = None) -> PromptOutput:
        if image_features is None:
            return super().with_context(ctx)
        bias = self.bias(image_features).to(self.ctx.dtype)  # [B, Dt]
        if ctx.dim() == 2:
            return PromptOutput(self.assemble(ctx.unsqueeze(0) + bias.unsqueeze(1)), self.tokenized_prompts)
        if ctx.dim() != 3 or ctx.shape[1:] != self.ctx.shape:
            raise ValueError(f"with_context expects {tuple(self.ctx.shape)} or [K, ...] of it, got {tuple(ctx.shape)}")
        shifted = ctx.unsqueeze(1) + bias.unsqueeze(0).unsqueeze(2)  # [K, B, M, Dt]
        prompts = self.assemble(shifted)  # [K, B, C, L, Dt]
        return PromptOutput(prompts.reshape(-1, *prompts.shape[2:]), self.tokenized_prompts)  # [K*B, C, L, Dt]
