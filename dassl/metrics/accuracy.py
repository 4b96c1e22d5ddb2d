"""Top-k accuracy (Dassl ``dassl.metrics.compute_accuracy``)."""
from __future__ import annotations

import torch

__all__ = ["compute_accuracy"]


def compute_accuracy(output: torch.Tensor | tuple | list, target: torch.Tensor, topk: tuple[int, ...] = (1,)):
    """Top-k accuracy in percent.

    Args:
        output: logits ``[B, C]`` (a tuple/list: its first element is used).
        target: labels ``[B]``.
        topk: the k values.

    Returns:
        A list with one 1-element float tensor per k (``[0].item()`` gives top-1 in percent).
    """
    if isinstance(output, (tuple, list)):
        output = output[0]
    maxk = max(topk)
    batch_size = target.size(0)
    _, pred = output.topk(maxk, 1, True, True)
    pred = pred.t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    res = []
    for k in topk:
        correct_k = correct[:k].reshape(-1).float().sum(0, keepdim=True)
        res.append(correct_k.mul_(100.0 / batch_size))
    return res
