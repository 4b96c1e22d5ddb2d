"""KgCoOp: Yao et al., "Visual-Language Prompt Tuning with Knowledge-guided Context Optimization", CVPR 2023
(arXiv:2303.13283).

The knowledge-guided term ``W * (1 - mean_c cos(t_c, w_c^clip))`` as a regulariser on any learner: ``t_c`` are the
learned-prompt text features of the step (``output.text_features``, ``[C, D]``; ``[B, C, D]`` for
image-conditioned learners, then the mean runs over images and classes), ``w_c^clip`` the frozen hand-crafted
template features, computed ONCE in :meth:`KgCoOp.setup` with the model's own frozen text encoder (no second
CLIP, no device assumptions) and kept as a non-persistent buffer (never checkpointed). ``fp16_anchors`` reproduces
the reference's fp16-rounded anchors (COCOOP.md, KgCoOp).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from clip import clip

from ..options import Options, OptionError, check_bool, check_number, option
from ..registry import REGULARISER_REGISTRY
from ..templates import kgcoop_template
from .base import Regulariser


@dataclass
class KgCoOpOptions(Options):
    """Options of :class:`KgCoOp` (node ``REGULARISER.KGCOOP``; reference spelling ``TRAINER.COOP.W``)."""

    w: float = option(1.0, "W", "weight of the knowledge-guided term (scripts: 8.0; DePT configs: 2.0)")
    template: str = option("", "TEMPLATE", '"" = the per-dataset KgCoOp template (zero-shot table + overrides)')
    fp16_anchors: bool = option(False, "FP16_ANCHORS", "True: the reference's fp16-rounded anchors (exact comparison)")

    def __post_init__(self) -> None:
        check_number("W", self.w, low=0.0)
        check_bool("FP16_ANCHORS", self.fp16_anchors)
        if not isinstance(self.template, str) or (self.template and "{}" not in self.template):
            raise OptionError("TEMPLATE", f'must contain "{{}}", got {self.template!r}')

    def constructor_kwargs(self, cfg) -> dict[str, Any]:
        return dict(w=float(self.w), template=self.template or kgcoop_template(cfg.DATASET.NAME),
                    fp16_anchors=self.fp16_anchors)


def kg_loss(text_features: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """``1 - mean cos(t, w)``; ``text_features`` ``[C, D]`` or ``[B, C, D]``, ``anchors`` ``[C, D]`` (fp32 result)."""
    t = text_features.float()
    w = anchors.float().expand_as(t)
    return 1.0 - nn.functional.cosine_similarity(t, w, dim=-1).mean()


def reference_kg_loss(text_features: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """The reference's arithmetic: both sides L2-normalised in their own dtype (the fp16 anchors again, as in every
    reference forward pass), cosine with ``eps=1e-7`` in the promoted dtype (fp16 in fp16 runs), ``1 - mean``."""
    t = text_features / text_features.norm(dim=-1, keepdim=True)
    w = anchors / anchors.norm(dim=-1, keepdim=True)
    w = w.expand(*t.shape[:-2], *w.shape) if t.dim() == 3 else w
    return (1.0 - nn.functional.cosine_similarity(t, w, dim=-1, eps=1e-7).mean()).float()


@REGULARISER_REGISTRY.register(options=KgCoOpOptions)
class KgCoOp(Regulariser):
    """Knowledge-guided context optimisation term.

    Args:
        w: weight W (``TRAINER.COOP.W``; reference default 1.0, scripts 8.0, DePT configs 2.0).
        template: hand-crafted template with one ``{}`` for the class name.
        fp16_anchors: reproduce the reference's anchors exactly (``REGULARISER.KGCOOP.FP16_ANCHORS``): it encodes
            them with a second CLIP that is never cast to fp32, so they are fp16 features, L2-normalised in fp16
            (at construction and again in every forward pass), whatever ``PREC``. Default False: fp32 anchors from
            the frozen text encoder (the term is 0 at initialisation when the template is the init phrase).
    """

    def __init__(self, w: float = 1.0, template: str = "a photo of a {}.", fp16_anchors: bool = False) -> None:
        super().__init__()
        self.w = float(w)
        self.template = template
        self.fp16_anchors = bool(fp16_anchors)
        self.register_buffer("anchors", torch.empty(0), persistent=False)
        self._log: dict[str, float] = {}

    @torch.no_grad()
    def setup(self, model: nn.Module, classnames: Sequence[str]) -> None:
        """Encode ``template.format(name)`` for every class with ``model.clip`` (frozen); anchors ``[C, D]``."""
        texts = [self.template.format(c.replace("_", " ")) for c in classnames]
        device = model.clip.token_embedding.weight.device
        tokens = clip.tokenize(texts).to(device)
        if not self.fp16_anchors:
            feats = model.clip.encode_text(tokens)  # [C, D]
            self.anchors = (feats / feats.norm(dim=-1, keepdim=True)).float()
            return
        # the reference's second CLIP: OpenAI's fp16 layout (convert_weights) of the same weights, text tower only
        import copy

        from clip.model import TextEncoder, convert_weights

        text = copy.deepcopy(TextEncoder(model.clip))
        convert_weights(text)
        feats = text(model.clip.token_embedding(tokens).to(text.dtype), tokens)  # [C, D] fp16
        self.anchors = feats / feats.norm(dim=-1, keepdim=True)  # fp16, normalised in fp16

    def forward(self, model: nn.Module, output: Any, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        anchors = self.anchors.to(output.text_features.device)
        text = output.text_features
        if text.dim() == 2 and text.shape[0] != anchors.shape[0]:  # N prompt sets per class (PLOT): [N*C, D]
            text = text.view(-1, anchors.shape[0], text.shape[-1])  # [N, C, D]: the mean runs over sets too
        if self.fp16_anchors:
            score = reference_kg_loss(text, anchors)
        else:
            score = kg_loss(text, anchors)
        self._log = {"kg_cos": 1.0 - float(score.detach())}
        return {"kg_loss": self.w * score}

    def log_values(self) -> dict[str, float]:
        return dict(self._log)
