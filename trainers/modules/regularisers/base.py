"""Regulariser interface: extra, already-weighted loss terms on a PromptedCLIP, plus optional hooks."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn


class Regulariser(nn.Module):
    """Base class. Frozen anchors (KgCoOp's hand-crafted text features) go in ``setup`` as
    ``persistent=False`` buffers; schedules in ``on_epoch_start``.

    Call: ``reg(model, output, batch) -> {name: weighted loss tensor}`` where ``output`` is the step's
    :class:`ModelOutput` (reuse ``output.image_features``!) and ``batch`` a dict with ``"img"`` ``[B, 3, H, W]``
    and ``"label"`` ``[B]`` on the model device.
    """

    def setup(self, model: nn.Module, classnames: Sequence[str]) -> None:
        """One-time preparation after the model is built."""

    def on_epoch_start(self, epoch: int, max_epoch: int) -> None:
        """Called at the start of each (0-based) epoch."""

    def forward(self, model: nn.Module, output: Any, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError  # pragma: no cover

    def log_values(self) -> dict[str, float]:
        """Scalars to log after the last call (norms, alphas, schedule values), under names of its own."""
        return {}

    def epoch_record(self) -> dict[str, Any]:
        """Fields this regulariser adds to the epoch's ``norms.jsonl`` record (JSON values)."""
        return {}

    def backward(self, terms: dict[str, torch.Tensor], params: Sequence[torch.Tensor],
                 scale: Callable[[torch.Tensor], torch.Tensor]) -> bool:
        """Optional gradient hook: compute the gradients of the step yourself (e.g. ProGrad's projection of the
        CE gradient) into ``p.grad`` of ``params`` (already zeroed) and return True; ``scale`` is the amp loss
        scaling (identity without amp). Default False: the trainer back-propagates ``sum(terms.values())``."""
        return False
