"""DePT's CAT head (Zhang et al., "DePT: Decoupled Prompt Tuning", CVPR 2024, arXiv:2309.07439; trainer names
``ExtrasLinearProbe*`` in Koorye/DePT)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..options import Options, OptionError, check_bool, check_number, option
from ..registry import HEAD_REGISTRY
from .base import Head
from .similarity import Similarity

logger = logging.getLogger(__name__)


class ChannelAffine(nn.Module):
    """cwT: ``f -> gamma * f + beta`` per channel (gamma=1, beta=0 at start; fp32 params cast to ``f``'s dtype)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))
        self.beta = nn.Parameter(torch.zeros(dim))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return f * self.gamma.to(f.dtype) + self.beta.to(f.dtype)


def match_rows(train_names: Sequence[str], eval_names: Sequence[str]) -> list[int] | None:
    """Classifier rows for ``eval_names`` (index of each evaluation class among the training classes), or None.

    Both lists are in label order; for the ImageNet family that is sorted-wnid order, so the evaluation classes
    are an ordered subsequence of the training classes (ImageNet-A/R: 200 of 1000). The in-order walk therefore
    resolves duplicate names ("crane", "maillot") correctly; if the order is not a subsequence, names that are
    unique among the training classes are matched directly. None when some evaluation class has no row.
    """
    rows, j = [], 0
    for name in eval_names:
        while j < len(train_names) and train_names[j] != name:
            j += 1
        if j == len(train_names):
            break
        rows.append(j)
        j += 1
    if len(rows) == len(eval_names):
        return rows
    index: dict[str, int] = {}
    dup = set()
    for i, n in enumerate(train_names):
        if n in index:
            dup.add(n)
        index[n] = i
    if any(n not in index or n in dup for n in eval_names):
        return None
    return [index[n] for n in eval_names]


@dataclass
class DePTOptions(Options):
    """Options of the :class:`DePT` head (node ``MODEL.HEAD.DEPT``; reference spellings ``TRAINER.LINEAR_PROBE.*``,
    ``TRAINER.FILM.LINEAR_PROBE``, ``OPTIM.LR_EXP``)."""

    type: str = option("linear", "TYPE", 'CAT classifier; only "linear" is supported')
    weight: float = option(0.7, "WEIGHT", "lambda: loss (1-l)*CE_ITM + l*CE_CAT; test logits (1-l)*s + l*z")
    fusion: bool = option(True, "TEST_TIME_FUSION", "False: the CAT logits z alone on base-class tests")
    film: bool = option(True, "FILM", "channel-wise affine (cwT) before the linear classifier")
    label_space: str = option("", "LABEL_SPACE", 'label-space id ("" = DATASET.NAME; ImageNet family: "imagenet")')
    lr_mult: float = option(6.5, "LR_MULT", "head learning rate = OPTIM.LR * LR_MULT")

    def __post_init__(self) -> None:
        if self.type != "linear":
            raise OptionError("TYPE", f'must be "linear" (the DePT default), got {self.type!r}')
        check_number("WEIGHT", self.weight, low=0.0, high=1.0)
        check_number("LR_MULT", self.lr_mult, low=0.0, low_open=True)
        check_bool("TEST_TIME_FUSION", self.fusion)
        check_bool("FILM", self.film)

    def constructor_kwargs(self, cfg) -> dict[str, Any]:
        return dict(weight=float(self.weight), fusion=self.fusion, film=self.film,
                    label_space=self.label_space or cfg.DATASET.NAME, lr_mult=float(self.lr_mult))


@HEAD_REGISTRY.register(options=DePTOptions)
class DePT(Head):
    """ITM head (tau-scaled cosine, :class:`Similarity`) + CAT head (cwT + linear classifier over the training
    classes).

    * Training (``loss``): ``(1-lam) * CE_B(s, y) + lam * CE_2B(z, [y; y])`` where ``s`` are the ITM logits and
      ``z = W [cwT_t(t_{y_i}); cwT_v(v_i)] + b`` on the RAW (unnormalised) projected features: the text features
      of the ground-truth classes first (``t_{i, y_i}`` for image-conditioned learners), then the image
      features. ``forward`` returns ``s`` in train mode.
    * Evaluation: ``(1-lam) * s + lam * z`` on raw logits with ``z = W cwT_v(v) + b`` (``fusion=False``: ``z``
      alone) when the base branch is active, else ``s`` (ITM only).
    * The base branch is active iff the evaluation label space equals the training one AND every evaluation
      class is a training class; the classifier rows are then selected by :func:`match_rows` (ImageNet-A/R).
      The training class names and label space travel in the checkpoint (``_extra_state``), so an eval-only run
      on new classes or another dataset decides correctly.
    * fp32 parameters (a deliberate deviation: the reference keeps them in fp16, where the tiny
      head updates underflow): cwT is applied in the feature
      dtype, the classifier in fp32.

    Args:
        clip_model: frozen CLIP (D and tau).
        classnames: current classes (= training classes when training).
        weight: lambda (``TRAINER.LINEAR_PROBE.WEIGHT``).
        fusion: ``TRAINER.LINEAR_PROBE.TEST_TIME_FUSION``.
        film: ``TRAINER.FILM.LINEAR_PROBE`` (False: no cwT).
        label_space: id of the current label space (``TRAINER.LINEAR_PROBE.LABEL_SPACE`` or ``DATASET.NAME``).
        lr_mult: learning-rate multiplier of the head's parameters (``OPTIM.LR_EXP``).
    """

    def __init__(
        self, clip_model: nn.Module, classnames: Sequence[str], weight: float = 0.7, fusion: bool = True,
        film: bool = True, label_space: str = "", lr_mult: float = 6.5,
    ) -> None:
        super().__init__(clip_model, classnames)
        dim = clip_model.text_projection.shape[1]
        device = clip_model.text_projection.device
        self.weight = float(weight)
        self.fusion = bool(fusion)
        self.lr_mult = float(lr_mult)
        self.itm = Similarity(clip_model, classnames)
        self.film_lp_img = ChannelAffine(dim).to(device) if film else nn.Identity()
        self.film_lp_text = ChannelAffine(dim).to(device) if film else nn.Identity()
        self.linear_probe_proj = nn.Linear(dim, len(classnames)).to(device)
        self.train_classnames = [str(c) for c in classnames]
        self.train_label_space = str(label_space)
        self.eval_classnames = list(self.train_classnames)
        self.eval_label_space = self.train_label_space
        self.row_index: torch.Tensor | None = None
        self.update_branch()

    # -- label space ------------------------------------------------------------------------------
    def update_branch(self) -> None:
        """Decide ``use_base_branch`` and the classifier rows from the training and evaluation classes."""
        rows = None
        if self.eval_label_space == self.train_label_space:
            rows = match_rows(self.train_classnames, self.eval_classnames)
        self.use_base_branch = rows is not None
        identity = rows is not None and rows == list(range(len(self.train_classnames)))
        self.row_index = None if rows is None or identity else torch.tensor(rows, dtype=torch.long)
        if rows is None:
            logger.info("DePT: evaluation classes are not (a subset of) the training classes -> ITM head only")
        elif not identity:
            logger.info(f"DePT: CAT head on {len(rows)} of {len(self.train_classnames)} training classes (rows masked)")

    def get_extra_state(self) -> dict[str, Any]:
        return {"classnames": list(self.train_classnames), "label_space": self.train_label_space}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.train_classnames = [str(c) for c in state["classnames"]]
        self.train_label_space = str(state["label_space"])
        self.update_branch()

    def adapt_to_state_dict(self, state: dict[str, Any]) -> None:
        """Resize the classifier to a checkpoint's number of training classes (before a strict load)."""
        w = state.get("linear_probe_proj.weight")
        if w is not None and tuple(w.shape) != tuple(self.linear_probe_proj.weight.shape):
            old = self.linear_probe_proj
            self.linear_probe_proj = nn.Linear(w.shape[1], w.shape[0]).to(old.weight.device, old.weight.dtype)
            self.linear_probe_proj.requires_grad_(old.weight.requires_grad)

    # -- logits -------------------------------------------------------------------------------------
    def cat_logits(self, features: torch.Tensor, film: nn.Module, rows: torch.Tensor | None = None) -> torch.Tensor:
        """``W cwT(f) + b`` in fp32: ``[N, D] -> [N, C_train]`` (or ``[N, len(rows)]``)."""
        weight, bias = self.linear_probe_proj.weight, self.linear_probe_proj.bias
        if rows is not None:
            rows = rows.to(weight.device)
            weight, bias = weight[rows], bias[rows]
        return F.linear(film(features).float(), weight.float(), bias.float())

    def forward(self, image_features, text_features, labels=None):
        s = self.itm(image_features, text_features)  # [B, C]
        if self.training or not self.use_base_branch:
            return s
        z = self.cat_logits(image_features, self.film_lp_img, self.row_index)  # [B, C]
        if not self.fusion:
            return z
        return (1.0 - self.weight) * s.float() + self.weight * z

    def cat_training_set(self, output, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The 2B CAT samples: ``[cwT_t(t_{y_i}); cwT_v(v_i)]`` ``[2B, D]`` (texts first) and labels ``[y; y]``."""
        t, v = output.text_features, output.image_features
        if t.dim() == 3:  # [B, C, D] per-image text features (CoCoOp)
            t_y = t[torch.arange(t.shape[0], device=t.device), labels]
        else:
            t_y = t[labels]  # [B, D]
        feats = torch.cat([self.film_lp_text(t_y).float(), self.film_lp_img(v).float()], dim=0)  # [2B, D]
        return feats, torch.cat([labels, labels])

    def loss(self, output, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        s = self.itm(output.image_features, output.text_features)
        feats, y2 = self.cat_training_set(output, labels)
        z = F.linear(feats, self.linear_probe_proj.weight.float(), self.linear_probe_proj.bias.float())  # [2B, C]
        return {
            "itm_loss": (1.0 - self.weight) * F.cross_entropy(s, labels),
            "cat_loss": self.weight * F.cross_entropy(z, y2),
        }
