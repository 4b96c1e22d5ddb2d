"""Prompt learner interface shared by CoOp, CoCoOp, MaPLe, ....

A learner turns learnable (or fixed) context into *embedded* text prompts for the frozen CLIP text
encoder, and optionally into visual prompts. It never holds the CLIP model itself, so its state dict
contains only its own trainable tensors (class-dependent buffers are ``persistent=False``).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import nn


@dataclass
class PromptOutput:
    """What a learner hands to :class:`PromptedCLIP`.

    Attributes:
        prompts: embedded text prompts, ``[N, L, Dt]`` (N = C, or K*C for stacked contexts, or T*C for
            template ensembles) or ``[B, C, L, Dt]`` for image-conditioned learners (CoCoOp).
        tokenized_prompts: token ids ``[N, L]`` matching the first form (``[C, L]`` for the
            ``[B, C, L, Dt]`` form); only used to find the EOT position.
        deep_text_prompts: optional J-1 tensors ``[n, Dt]`` (or ``[N, n, Dt]``) overwriting token
            positions ``1..n`` before text blocks ``2..J`` (MaPLe).
        visual_prompts: optional ``[n, Dv]`` or ``[B, n, Dv]`` shallow visual prompts (ViT only).
        deep_visual_prompts: optional J-1 tensors replacing the last n visual tokens before blocks 2..J.
        n_templates: T > 1 means ``prompts`` holds T groups of C prompts (template-major) whose
            L2-normalised features are averaged and renormalised (prompt ensembles).
        n_sets: S > 1 means each context holds S prompt sets (PLOT): ``prompts`` is ``[K*S*C, L, Dt]``
            (context-major, then set-major). A head with ``uses_prompt_sets`` gets the ``[K*S*C, D]`` features as
            they are; any other head the normalised mean over the S sets, ``[K*C, D]``.
    """

    prompts: torch.Tensor
    tokenized_prompts: torch.Tensor
    deep_text_prompts: Sequence[torch.Tensor] | None = None
    visual_prompts: torch.Tensor | None = None
    deep_visual_prompts: Sequence[torch.Tensor] | None = None
    n_templates: int = 1
    n_sets: int = 1


class PromptLearner(nn.Module):
    """Base class of prompt learners.

    Subclasses set ``image_conditioned = True`` when ``forward`` uses the image features (CoCoOp);
    :class:`PromptedCLIP` then never caches text features, and passes the (raw projected) image
    features ``[B, D]`` to ``forward``.

    Args (the common constructor signature; subclasses may add keyword arguments):
        classnames: the C class names (underscores become spaces).
        clip_model: the frozen CLIP (only its ``token_embedding`` and dtype are read).
    """

    image_conditioned: bool = False
    #: True when the learner provides visual prompts (needs a ViT image tower)
    prompts_image_tower: bool = False
    #: registered model name = checkpoint folder (the reference forks' name)
    checkpoint_name: str = "prompt_learner"

    def __init__(self, classnames: Sequence[str], clip_model: nn.Module) -> None:
        super().__init__()
        self.classnames = [c.replace("_", " ") for c in classnames]

    @property
    def n_cls(self) -> int:
        return len(self.classnames)

    def forward(self, image_features: torch.Tensor | None = None) -> PromptOutput:  # pragma: no cover
        raise NotImplementedError

    def adapt_to_state_dict(self, state: dict) -> None:
        """Reshape to a checkpoint's trainable state before the strict load (default: nothing)."""

    def context_vectors(self) -> torch.Tensor | None:
        """The learnable context tensor (``[M, Dt]`` or ``[C, M, Dt]``), or None when there is none."""
        return None

    def with_context(self, ctx: torch.Tensor, image_features: torch.Tensor | None = None) -> PromptOutput:
        """Prompts built from an override context of the shape of :meth:`context_vectors`, or a stack
        ``[K, ...]`` of such contexts (then K*C prompts, context-major). ``image_features`` ``[B, D]`` is used
        by image-conditioned learners only (then ``[K*B, C, L, Dt]``)."""
        raise NotImplementedError(f"{type(self).__name__} does not support with_context()")  # pragma: no cover

    #: True when the text prompts depend on trainable tensors (False: fixed text, cached in every mode)
    text_depends_on_params: bool = True

    def visual_prompts(self) -> tuple[torch.Tensor | None, list[torch.Tensor] | None] | None:
        """(shallow ``[n, Dv]``, deep J-1 x ``[n, Dv]``) visual prompts of learners with
        ``prompts_image_tower``; None otherwise."""
        return None

    @contextlib.contextmanager
    def context_override(self, ctx: torch.Tensor) -> Iterator[None]:
        """Run the block with :meth:`context_vectors` temporarily equal to ``ctx`` (e.g. a corrupted context):
        every path (text, visual prompts, deep prompts) sees it; the original values are restored after."""
        own = self.context_vectors()
        if own is None:
            raise NotImplementedError(f"{type(self).__name__} has no context to override")
        saved = own.detach().clone()
        with torch.no_grad():
            own.copy_(ctx)
        try:
            yield
        finally:
            with torch.no_grad():
                own.copy_(saved)
