"""PromptedCLIP: one frozen CLIP core x one prompt learner x one head (style.md §2.4)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .heads.base import Head
from .prompt_learners.base import PromptLearner, PromptOutput


@dataclass
class ModelOutput:
    """Always returned by :meth:`PromptedCLIP.forward` (train and eval alike).

    Attributes:
        logits: ``[B, C]``.
        image_features: raw projected image features ``[B, D]``.
        text_features: raw projected text features ``[C, D]`` (or ``[B, C, D]`` for image-conditioned
            learners; L2-normalised ensemble means for template ensembles).
        extras: free-form, e.g. the learner's :class:`PromptOutput` under ``"prompt_output"``.
    """

    logits: torch.Tensor
    image_features: torch.Tensor
    text_features: torch.Tensor
    extras: dict[str, Any] = field(default_factory=dict)


class PromptedCLIP(nn.Module):
    """Frozen CLIP encoders + ``logit_scale`` + a learner + a head. Never returns a loss.

    Text features are computed once per evaluation when the learner does not look at the image: in
    eval mode they are cached and reused while the learner/head parameters are unchanged (the cache
    key holds every parameter's in-place version counter, so optimiser steps and ``load_state_dict``
    invalidate it); ``train()``/``eval()`` and :meth:`invalidate_cache` clear it too. The cached
    tensor is the one a fresh computation returns, so logits are bit-identical.

    Args:
        clip_model: a CLIP from ``clip.load_clip`` (kept frozen and in eval mode).
        learner: a :class:`PromptLearner`.
        head: a :class:`Head`.
        text_chunk: for image-conditioned ``[B, C, L, Dt]`` prompts, images per text-encoder call (0 = one
            batched call of B*C sequences; 1 = one pass of C prompts per image, as the CoCoOp reference). The
            features are the same either way (each sequence is encoded independently).
    """

    def __init__(self, clip_model: nn.Module, learner: PromptLearner, head: Head, text_chunk: int = 0) -> None:
        super().__init__()
        self.clip = clip_model
        self.learner = learner
        self.head = head
        self.text_chunk = int(text_chunk)
        self.clip.requires_grad_(False)
        self.clip.eval()
        self._cache: tuple[Any, torch.Tensor] | None = None

    @property
    def dtype(self) -> torch.dtype:
        return self.clip.dtype

    # -- modes and cache -------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "PromptedCLIP":
        if mode != self.training:
            self.invalidate_cache()  # a mode switch means parameters may have changed
        super().train(mode)
        self.clip.eval()  # frozen encoders never leave eval mode (BatchNorm statistics of ResNets)
        return self

    def invalidate_cache(self) -> None:
        self._cache = None

    def _cache_key(self) -> tuple:
        params = list(self.learner.parameters()) + list(self.head.parameters())
        return tuple((id(p), p._version) for p in params)

    # -- encoders --------------------------------------------------------------------------------
    def encode_image(self, images: torch.Tensor, prompt_output: PromptOutput | None = None) -> torch.Tensor:
        """Raw projected image features ``[B, D]`` (visual prompts from ``prompt_output`` if any)."""
        kwargs = {}
        if prompt_output is not None and (
            prompt_output.visual_prompts is not None or prompt_output.deep_visual_prompts is not None
        ):
            kwargs = dict(prompts=prompt_output.visual_prompts, deep_prompts=prompt_output.deep_visual_prompts)
        return self.clip.encode_image(images.type(self.dtype), **kwargs)

    def encode_text(self, prompt_output: PromptOutput) -> torch.Tensor:
        """Text features of a :class:`PromptOutput`: ``[N, D]``, ``[B, C, D]`` for 4-D prompts, and
        ``[C, D]`` (normalised ensemble mean) when ``n_templates > 1``."""
        prompts = prompt_output.prompts
        tokenized = prompt_output.tokenized_prompts
        deep = prompt_output.deep_text_prompts
        if prompts.dim() == 4:  # [B, C, L, Dt] image-conditioned
            b, c = prompts.shape[:2]
            step = self.text_chunk if self.text_chunk > 0 else b
            chunks = []
            for i in range(0, b, step):
                part = prompts[i : i + step]  # [b', C, L, Dt]
                feats = self.clip.encode_prompts(
                    part.reshape(-1, *prompts.shape[2:]), tokenized.repeat(part.shape[0], 1), deep_prompts=deep
                )  # [b'*C, D]
                chunks.append(feats.view(part.shape[0], c, -1))
            return chunks[0] if len(chunks) == 1 else torch.cat(chunks, dim=0)  # [B, C, D]
        feats = self.clip.encode_prompts(prompts, tokenized, deep_prompts=deep)  # [N, D]
        t = prompt_output.n_templates
        if t > 1:
            feats = feats / feats.norm(dim=-1, keepdim=True)
            feats = feats.view(t, -1, feats.shape[-1]).mean(dim=0)  # [C, D]
            feats = feats / feats.norm(dim=-1, keepdim=True)
        return feats

    def text_features(self, image_features: torch.Tensor | None = None) -> tuple[torch.Tensor, PromptOutput | None]:
        """Text features for the current learner state (cached in eval mode when possible)."""
        cacheable = not self.training and not self.learner.image_conditioned and not torch.is_grad_enabled()
        if cacheable and self._cache is not None and self._cache[0] == self._cache_key():
            return self._cache[1], None
        out = self.learner(image_features if self.learner.image_conditioned else None)
        feats = self.encode_text(out)
        if cacheable:
            self._cache = (self._cache_key(), feats)
        return feats, out

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> ModelOutput:
        """Args: images ``[B, 3, H, W]``. Returns a :class:`ModelOutput` with logits ``[B, C]``."""
        prompt_output = None
        if self.learner.prompts_image_tower:
            prompt_output = self.learner(None)
        image_features = self.encode_image(images, prompt_output)  # [B, D]
        text_features, out = self.text_features(image_features)
        logits = self.head(image_features, text_features, labels)
        return ModelOutput(
            logits=logits,
            image_features=image_features,
            text_features=text_features,
            extras={"prompt_output": out if out is not None else prompt_output},
        )
