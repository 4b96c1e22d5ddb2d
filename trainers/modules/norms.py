"""Context-norm maths shared by the Nemesis regulariser and the trainer's norm logging."""
from __future__ import annotations

import math
from typing import Literal

import torch

NORM_ORDERS = {"one": 1.0, "two": 2.0, "inf": math.inf}
NormType = Literal["one", "two", "inf"]
NORM_TYPES = tuple(NORM_ORDERS)

__all__ = ["NORM_ORDERS", "NORM_TYPES", "NormType", "position_norms", "matrix_norm"]


def position_norms(ctx: torch.Tensor, norm_type: NormType = "two") -> torch.Tensor:
    """Per-position vector norms over the embedding axis: ``[M, Dt] -> [M]``, ``[C, M, Dt] -> [C, M]``."""
    return torch.linalg.vector_norm(ctx.float(), ord=NORM_ORDERS[norm_type], dim=-1)


def matrix_norm(ctx: torch.Tensor, norm_type: NormType = "two") -> torch.Tensor:
    """Frobenius ("two"), matrix 1-norm ("one") or inf-norm ("inf") of ``[M, Dt]``, averaged over classes."""
    ordv = {"two": "fro", "one": 1, "inf": math.inf}[norm_type]
    return torch.linalg.matrix_norm(ctx.float(), ord=ordv).mean()
