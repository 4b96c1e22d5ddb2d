"""PLOT's prompt sets (Chen et al., "PLOT: Prompt Learning with Optimal Transport for Vision-Language Models",
ICLR 2023, arXiv:2210.01253; the ShyFoo/Nemesis fork's ``trainers/plot.py``)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from dassl.utils.errors import ConfigError

from ..options import OptionError, Options, check_bool, check_choice, option
from ..registry import PROMPT_LEARNER_REGISTRY
from .base import PromptLearner, PromptOutput
from .coop import CLASS_TOKEN_POSITIONS, ClassTokenPosition, CoOpPromptLearner, check_n_ctx, normalise_ctx_init

logger = logging.getLogger(__name__)


@dataclass
class PLOTPromptOptions(Options):
    """Options of :class:`PLOTPromptLearner` (node ``MODEL.PROMPT_LEARNER``; reference spellings
    ``TRAINER.PLOT.{N,N_CTX,CSC,CTX_INIT,CLASS_TOKEN_POSITION}``)."""

    n_sets: int = option(4, "N_SETS", "number of prompt sets N (PLOT; the reference key TRAINER.PLOT.N)")
    n_ctx: int = option(16, "N_CTX", "context tokens M per set (ignored when CTX_INIT is given)")
    ctx_init: Any = option("", "CTX_INIT", 'initialisation words of every set, e.g. "a photo of a"')
    csc: bool = option(False, "CSC", "class-specific contexts")
    class_token_position: str = option("end", "CLASS_TOKEN_POSITION", "end | middle | front")

    def __post_init__(self) -> None:
        if isinstance(self.n_sets, bool) or not isinstance(self.n_sets, int) or self.n_sets < 1:
            raise OptionError("N_SETS", f"(number of prompt sets) must be a positive integer, got {self.n_sets!r}")
        self.ctx_init = normalise_ctx_init(self.ctx_init)
        check_n_ctx(self.n_ctx, self.ctx_init)
        check_bool("CSC", self.csc)
        check_choice("CLASS_TOKEN_POSITION", self.class_token_position, CLASS_TOKEN_POSITIONS)


@PROMPT_LEARNER_REGISTRY.register(options=PLOTPromptOptions)
class PLOTPromptLearner(PromptLearner):
    """N sets of M learnable context vectors: ``ctx`` ``[N, M, Dt]`` (generic) or ``[C, N, M, Dt]`` (CSC).

    Every set builds CoOp prompts for every class (layouts ``end`` / ``middle`` / ``front`` as
    :class:`CoOpPromptLearner`, for every set: the reference only builds ``end`` correctly); the N*C
    prompts are encoded in one text call, set-major (``n_sets = N`` in the :class:`PromptOutput`). The PLOT head
    transports between the local image features and the N features of each class; any other head gets the
    normalised mean over the sets.

    Initialisation (the reference's random-number consumption): ``torch.empty(N, M, Dt)`` (CSC
    ``(C, N, M, Dt)``) in CLIP's dtype filled by one ``normal_(std=0.02)``; with ``CTX_INIT`` every set starts from
    the phrase's token embeddings (N copies; the reference crashes) and no random numbers are drawn.

    ``context_vectors()`` is ``ctx`` (position axis -2), so the Nemesis norms ``[N, M]`` / ``[C, N, M]`` are
    summed over the sets (and classes), the logged per-position norms averaged over them, and a corruption of
    position j (CoOpCRT, PAN) acts on position j of every set. ``with_context`` takes ``ctx``'s shape or a stack
    ``[K, ...]`` and returns ``[K*N*C, L, Dt]`` (context-major, then set-major).

    Args:
        classnames, clip_model: as :class:`CoOpPromptLearner`.
        n_sets: N.
        n_ctx: M (ignored when ``ctx_init`` is given: M = its word count).
        ctx_init: initialisation phrase of every set.
        csc: class-specific contexts (honoured with ``ctx_init`` too, as our CoOp learner).
        class_token_position: "end" | "middle" | "front".
        init_std: std of the random initialisation.
    """

    context_length = staticmethod(CoOpPromptLearner.context_length)

    @staticmethod
    def context_lead_axes(node, settings: dict) -> list[tuple[str, int | None]]:
        """Leading axes of ``ctx`` before ``[M, Dt]`` for the pre-flight checkpoint check: ``[("C", None)]`` under
        CSC, then ``("N", N_SETS)``."""
        n_sets = node.get("N_SETS") if node is not None else None
        n_sets = n_sets if isinstance(n_sets, int) and not isinstance(n_sets, bool) else None
        return ([("C", None)] if settings.get("CSC") else []) + [("N", n_sets)]

    def __init__(
        self,
        classnames: Sequence[str],
        clip_model: nn.Module,
        n_sets: int = 4,
        n_ctx: int = 16,
        ctx_init: str = "",
        csc: bool = False,
        class_token_position: ClassTokenPosition = "end",
        init_std: float = 0.02,
    ) -> None:
        super().__init__(classnames, clip_model)
        if class_token_position not in CLASS_TOKEN_POSITIONS:
            raise ConfigError(
                f"CLASS_TOKEN_POSITION must be one of {CLASS_TOKEN_POSITIONS}, got {class_token_position!r}"
            )
        n_sets = int(n_sets)
        if n_sets < 1:
            raise ConfigError(f"the number of PLOT prompt sets N must be >= 1, got {n_sets}")
        # the CoOp learner's initialisation with a prompt-set axis: N copies of CTX_INIT, or one N(0, std^2) draw on
        # [(C,) N, M, Dt] (the reference's); then CoOp's class buffers for the prompts "<prefix> <name>."
        ctx_vectors, n_ctx, prompt_prefix = CoOpPromptLearner._initial_context(self, clip_model, n_ctx, ctx_init, csc,
                                                                               (n_sets,), init_std)
        logger.info(f"PLOT: {n_sets} prompt sets of this context")
        self.n_sets = n_sets
        self.n_ctx = n_ctx
        self.ctx_dim = ctx_vectors.shape[-1]
        self.csc = bool(csc)
        self.class_token_position = class_token_position
        self.ctx = nn.Parameter(ctx_vectors.to(clip_model.token_embedding.weight.device))  # reference key "ctx"
        CoOpPromptLearner._register_class_buffers(self, clip_model, prompt_prefix, n_ctx, class_token_position)
        self.register_buffer("set_tokenized_prompts", self.tokenized_prompts.repeat(n_sets, 1),
                             persistent=False)  # [N*C, L]

    def context_vectors(self) -> torch.Tensor:
        return self.ctx

    def assemble(self, ctx: torch.Tensor) -> torch.Tensor:
        """Embedded prompts ``[*lead, N, C, L, Dt]`` of a context ``[*lead, N, M, Dt]`` (generic) or
        ``[*lead, C, N, M, Dt]`` (CSC)."""
        n_cls = self.n_cls
        if self.csc:
            ctx = ctx.transpose(-4, -3)  # [*lead, N, C, M, Dt]
        else:
            ctx = ctx.unsqueeze(-3).expand(*ctx.shape[:-2], n_cls, *ctx.shape[-2:])  # [*lead, N, C, M, Dt]
        lead = ctx.shape[:-3]  # (*lead, N)
        prefix = self.token_prefix.expand(*lead, *self.token_prefix.shape)  # [*lead, N, C, 1, Dt]
        suffix = self.token_suffix.expand(*lead, *self.token_suffix.shape)  # [*lead, N, C, L-1-M, Dt]
        prompts = torch.cat([prefix, ctx.to(prefix.dtype), suffix], dim=-2)  # end layout
        if self.position_index is not None:
            index = self.position_index.view(*([1] * len(lead)), n_cls, -1, 1)
            index = index.expand(*lead, n_cls, prompts.shape[-2], prompts.shape[-1])
            prompts = torch.gather(prompts, -2, index)  # the class tokens moved, in every set
        return prompts

    def _output(self, ctx: torch.Tensor, k: int) -> PromptOutput:
        prompts = self.assemble(ctx)  # [(K,) N, C, L, Dt]
        return PromptOutput(
            prompts=prompts.reshape(-1, *prompts.shape[-2:]),  # [K*N*C, L, Dt]
            tokenized_prompts=self.set_tokenized_prompts.repeat(k, 1) if k > 1 else self.set_tokenized_prompts,
            n_sets=self.n_sets,
        )

    def forward(self, image_features: torch.Tensor | None = None) -> PromptOutput:
        return self._output(self.ctx, 1)

    def with_context(self, ctx: torch.Tensor, image_features: torch.Tensor | None = None) -> PromptOutput:
        base_dim = self.ctx.dim()
        if ctx.dim() == base_dim and ctx.shape == self.ctx.shape:
            return self._output(ctx, 1)
        if ctx.dim() != base_dim + 1 or ctx.shape[1:] != self.ctx.shape:
            raise ValueError(f"with_context expects {tuple(self.ctx.shape)} or [K, ...] of it, got {tuple(ctx.shape)}")
        return self._output(ctx, ctx.shape[0])
