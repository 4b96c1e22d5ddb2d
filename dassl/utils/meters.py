"""Running averages for logging (Dassl ``AverageMeter`` / ``MetricMeter``)."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch

__all__ = ["AverageMeter", "MetricMeter"]


class AverageMeter:
    """Current value, sum, count and average (optionally an exponential moving average).

    Args:
        ema: if True, ``avg = 0.9 * avg + 0.1 * val`` instead of ``sum / count``.
    """

    def __init__(self, ema: bool = False) -> None:
        self.ema = ema
        self.reset()

    def reset(self) -> None:
        self.val = 0.0
        self.avg = 0.0
        self.sum = 0.0
        self.count = 0

    def update(self, val: Any, n: int = 1) -> None:
        if isinstance(val, torch.Tensor):
            val = val.item()
        self.val = val
        self.sum += val * n
        self.count += n
        if self.ema:
            self.avg = self.avg * 0.9 + self.val * 0.1
        else:
            self.avg = self.sum / self.count


class MetricMeter:
    """A group of :class:`AverageMeter` keyed by name, rendered as ``name val (avg)``.

    Example::

        losses = MetricMeter()
        losses.update({"loss": 1.0, "acc": 50.0})
        str(losses)  # 'loss 1.0000 (1.0000) acc 50.0000 (50.0000)'
    """

    def __init__(self, delimiter: str = " ") -> None:
        self.meters: defaultdict[str, AverageMeter] = defaultdict(AverageMeter)
        self.delimiter = delimiter

    def update(self, input_dict: dict | None) -> None:
        if input_dict is None:
            return
        if not isinstance(input_dict, dict):
            raise TypeError("Input to MetricMeter.update() must be a dictionary")
        for k, v in input_dict.items():
            if isinstance(v, torch.Tensor):
                v = v.item()
            self.meters[k].update(v)

    def __str__(self) -> str:
        return self.delimiter.join(f"{name} {meter.val:.4f} ({meter.avg:.4f})" for name, meter in self.meters.items())
