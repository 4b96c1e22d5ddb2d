"""PromptedCLIP: one frozen CLIP core x one prompt learner x one head."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from .heads.base import Head
from .prompt_learners.base import PromptLearner, PromptOutput


@dataclass
class ModelOutput:
    """Always returned by :meth:`PromptedCLIP.forward` (train and eval alike).

    Attributes:
        logits: ``[B, C]``.
        image_features: raw projected image features ``[B, D]``; ``[B, T, D]`` local features (token 0 = the
            global feature) when the head has ``needs_local_features`` (PLOT).
        text_features: raw projected text features ``[C, D]`` (or ``[B, C, D]`` for image-conditioned
            learners; L2-normalised ensemble means for template ensembles; ``[N*C, D]`` set-major for a learner
            with N prompt sets and a head with ``uses_prompt_sets``).
    """

    logits: torch.Tensor
    image_features: torch.Tensor
    text_features: torch.Tensor


class PromptedCLIP(nn.Module):
    """Frozen CLIP encoders + ``logit_scale`` + a learner + a head. Never returns a loss.

    Text-feature cache: a learner whose text does not depend on trainable tensors
    (``text_depends_on_params = False``: hand-written prompts) has its text encoded once, in every mode; other
    learners that do not look at the image are cached in eval mode without grad. The cache is cleared
    explicitly where parameters change: a mode switch, ``load_state_dict`` of the learner or head (a post hook),
    :meth:`context_override`, and :meth:`invalidate_cache` (the trainer calls it after each optimiser step).
    The cached tensor is the one a fresh computation returns, so logits are bit-identical.

    Args:
        clip_model: a CLIP from ``clip.load_clip`` (kept frozen and in eval mode).
        learner: a :class:`PromptLearner`.
        head: a :class:`Head`.
        text_chunk: for image-conditioned ``[B, C, L, Dt]`` prompts, images per text-encoder call (0 = one
            batched call of B*C sequences; 1 = one pass of C prompts per image, as the CoCoOp reference). The
            features agree up to float rounding (each sequence is encoded independently, but the batched matrix
            products sum in another order).
        text_checkpoint: activation checkpointing of the text tower while gradients are recorded (each block is
            recomputed in the backward pass instead of keeping its activations: peak memory of image-conditioned
            learners such as CoCoOp drops, logits and gradients are unchanged;
            ``MODEL.PROMPT_LEARNER.TEXT_CHECKPOINT``).

    ``record_text_states`` (set by a regulariser that re-encodes variants of this step's prompts, Nemesis PAN):
    a training forward with gradients keeps the text tower's :class:`~clip.model.TextStates` of its prompts (one
    text call: ``[N, L, Dt]`` prompts, or the ``B*C`` per-image prompts when they are encoded in one chunk; see
    :meth:`text_states_apply`) until :meth:`pop_text_states` takes them; they are views of activations the backward
    pass keeps anyway.
    """

    def __init__(self, clip_model: nn.Module, learner: PromptLearner, head: Head, text_chunk: int = 0,
                 text_checkpoint: bool = False) -> None:
        super().__init__()
        self.clip = clip_model
        self.learner = learner
        self.head = head
        self.text_chunk = int(text_chunk)
        if hasattr(self.clip, "transformer"):
            self.clip.transformer.grad_checkpointing = bool(text_checkpoint)
        self.clip.requires_grad_(False)
        self.clip.eval()
        self._cache: torch.Tensor | None = None
        self.record_text_states = False
        self._text_states = None
        for module in (learner, head):
            module.register_load_state_dict_post_hook(lambda *_: self.invalidate_cache())

    @property
    def dtype(self) -> torch.dtype:
        return self.clip.dtype

    # -- modes and cache -------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "PromptedCLIP":
        if mode != self.training and self.learner.text_depends_on_params:
            self.invalidate_cache()  # a mode switch means parameters may have changed
        super().train(mode)
        self.clip.eval()  # frozen encoders never leave eval mode (BatchNorm statistics of ResNets)
        return self

    def invalidate_cache(self, force: bool = False) -> None:
        """Forget the cached text features. A learner whose text depends on no trainable tensor
        (``text_depends_on_params = False``: hand-written prompts, VPT) keeps them (its text cannot change: encoded
        once per model, not once per step) unless ``force``."""
        if force or self.learner.text_depends_on_params:
            self._cache = None

    @contextlib.contextmanager
    def context_override(self, ctx: torch.Tensor) -> Iterator[None]:
        """The learner's :meth:`~PromptLearner.context_override` with the text cache cleared around it."""
        self.invalidate_cache()
        try:
            with self.learner.context_override(ctx):
                yield
        finally:
            self.invalidate_cache()

    # -- encoders --------------------------------------------------------------------------------
    @property
    def local_features(self) -> bool:
        """True when the head consumes local image features ``[B, T, D]`` (``Head.needs_local_features``)."""
        return bool(getattr(self.head, "needs_local_features", False))

    def encode_image(self, images: torch.Tensor, prompt_output: PromptOutput | None = None) -> torch.Tensor:
        """Raw projected image features ``[B, D]`` (visual prompts from ``prompt_output`` if any), or the local
        features ``[B, T, D]`` of ``clip.encode_image_tokens`` for a head with ``needs_local_features``."""
        kwargs = {}
        if prompt_output is not None and (
            prompt_output.visual_prompts is not None or prompt_output.deep_visual_prompts is not None
        ):
            kwargs = dict(prompts=prompt_output.visual_prompts, deep_prompts=prompt_output.deep_visual_prompts)
        if self.local_features:
            return self.clip.encode_image_tokens(images.type(self.dtype), **kwargs)  # [B, T, D]
        return self.clip.encode_image(images.type(self.dtype), **kwargs)

    def encode_text(self, prompt_output: PromptOutput) -> torch.Tensor:
        """Text features of a :class:`PromptOutput`: ``[N, D]``, ``[B, C, D]`` for 4-D prompts, and
        ``[C, D]`` (normalised ensemble mean) when ``n_templates > 1``."""
        prompts = prompt_output.prompts
        tokenized = prompt_output.tokenized_prompts
        deep = prompt_output.deep_text_prompts
        sets = prompt_output.n_sets
        record = [] if self._records(prompt_output) else None
        if prompts.dim() == 4:  # [B, C, L, Dt] image-conditioned
            b, c = prompts.shape[:2]
            step = self.text_chunk if self.text_chunk > 0 else b
            chunks = []
            for i in range(0, b, step):
                part = prompts[i : i + step]  # [b', C, L, Dt]
                feats = self.clip.encode_prompts(
                    part.reshape(-1, *prompts.shape[2:]), tokenized.repeat(part.shape[0], 1), deep_prompts=deep,
                    record=record if step >= b else None,  # states of one call only
                )  # [b'*C, D]
                chunks.append(feats.view(part.shape[0], c, -1))
            if record:
                self._text_states = record[0]
            return chunks[0] if len(chunks) == 1 else torch.cat(chunks, dim=0)  # [B, C, D]
        feats = self.clip.encode_prompts(prompts, tokenized, deep_prompts=deep, record=record)  # [N, D]
        if record:
            self._text_states = record[0]
        if sets > 1 and not getattr(self.head, "uses_prompt_sets", False):
            # a head that wants one feature per class: the normalised mean over the sets ([K*S*C] -> [K*C])
            feats = feats / feats.norm(dim=-1, keepdim=True)
            feats = feats.view(-1, sets, self.learner.n_cls, feats.shape[-1]).mean(dim=1)
            feats = (feats / feats.norm(dim=-1, keepdim=True)).reshape(-1, feats.shape[-1])  # [K*C, D]
            return feats
        t = prompt_output.n_templates
        if t > 1:
            feats = feats / feats.norm(dim=-1, keepdim=True)
            feats = feats.view(t, -1, feats.shape[-1]).mean(dim=0)  # [C, D]
            feats = feats / feats.norm(dim=-1, keepdim=True)
        return feats

    def text_states_apply(self, prompt_output: PromptOutput) -> bool:
        """Whether the text features of these prompts can come from recorded states
        (:meth:`~clip.model.CLIP.encode_prompts_from`): a causal text tower without checkpointing, no deep prompts,
        and features that are the text tower's own (one template; prompt sets only for a head that takes them as
        they are)."""
        transformer = getattr(self.clip, "transformer", None)
        return (prompt_output.deep_text_prompts is None and prompt_output.n_templates == 1
                and (prompt_output.n_sets == 1 or getattr(self.head, "uses_prompt_sets", False))
                and getattr(transformer, "causal", False) and not transformer.grad_checkpointing
                and hasattr(self.clip, "encode_prompts_from"))

    def _records(self, prompt_output: PromptOutput) -> bool:
        """Whether this text call keeps its states: asked for, a training forward with gradients, and prompts whose
        features can come from them."""
        return (self.record_text_states and self.training and torch.is_grad_enabled()
                and self.text_states_apply(prompt_output))

    def pop_text_states(self):
        """The :class:`~clip.model.TextStates` of the last recorded text call (see the class docstring), or None;
        forgotten once taken."""
        states, self._text_states = self._text_states, None
        return states

    def _cacheable(self) -> bool:
        if not self.learner.text_depends_on_params:
            return True
        return not self.training and not self.learner.image_conditioned and not torch.is_grad_enabled()

    def text_features(self, image_features: torch.Tensor | None = None,
                      prompt_output: PromptOutput | None = None) -> tuple[torch.Tensor, PromptOutput | None]:
        """Text features for the current learner state (cached when possible, see the class docstring).

        ``prompt_output``: the learner's output of this step when already computed (it is not called again)."""
        cacheable = self._cacheable()
        if cacheable and self._cache is not None:
            return self._cache, None
        out = prompt_output
        if out is None:
            if image_features is not None and image_features.dim() == 3:  # local features: token 0 is the global one
                image_features = image_features[:, 0]
            out = self.learner(image_features if self.learner.image_conditioned else None)
        feats = self.encode_text(out)
        if cacheable:
            self._cache = feats
        return feats, out

    def forward(self, images: torch.Tensor) -> ModelOutput:
        """Args: images ``[B, 3, H, W]``. Returns a :class:`ModelOutput` with logits ``[B, C]``.

        The learner runs at most once: a learner with visual prompts gives them and the text prompts in one
        call (only its :meth:`~PromptLearner.visual_prompts` when the text features are cached)."""
        prompt_output = None
        if self.learner.prompts_image_tower:
            if self._cacheable() and self._cache is not None:
                visual, deep_visual = self.learner.visual_prompts()
                prompt_output = PromptOutput(prompts=None, tokenized_prompts=None, visual_prompts=visual,
                                             deep_visual_prompts=deep_visual)
                image_features = self.encode_image(images, prompt_output)  # [B, D]
                text_features, _ = self.text_features(image_features)
            else:
                prompt_output = self.learner(None)
                image_features = self.encode_image(images, prompt_output)  # [B, D]
                text_features, _ = self.text_features(image_features, prompt_output)
        else:
            image_features = self.encode_image(images)  # [B, D]
            text_features, _ = self.text_features(image_features)
        logits = self.head(image_features, text_features)
        return ModelOutput(logits=logits, image_features=image_features, text_features=text_features)
