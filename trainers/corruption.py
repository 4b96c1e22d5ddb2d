"""Context corruption of the Nemesis paper's low-norm experiments (scale or replace one context position at test time)."""
from __future__ import annotations

import torch

from dassl.config.setup import CORRUPT_TYPES  # the one definition (also the --corrupt-type choices)
from dassl.utils.errors import ConfigError


def corrupt_context(
    ctx: torch.Tensor, kind: str, position: int, factor: float, seed: int = 0
) -> torch.Tensor:
    """A corrupted copy of a context ``[M, Dt]`` or ``[C, M, Dt]`` (position axis -2).

    * ``original``: unchanged copy.
    * ``replace``: position P becomes N(0, factor^2) noise of the real width Dt (one draw per class under
      CSC), drawn from a generator seeded with ``seed`` (same noise for the same seed in any process).
    * ``scale``: position P is multiplied by ``factor``.
    """
    if kind == "rescale":
        kind = "scale"
    if kind not in CORRUPT_TYPES:
        raise ConfigError(f"CORRUPT.TYPE must be one of {CORRUPT_TYPES}, got {kind!r}")
    out = ctx.detach().clone()
    if kind == "original":
        return out
    n_ctx = ctx.shape[-2]
    if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < n_ctx:
        raise ConfigError(f"CORRUPT.POSITION must be an integer in [0, {n_ctx - 1}] (N_CTX = {n_ctx}), got {position!r}")
    target = out.select(-2, position)  # [Dt] or [C, Dt] view
    if kind == "replace":
        gen = torch.Generator().manual_seed(int(seed))
        noise = torch.randn(target.shape, generator=gen, dtype=torch.float32) * float(factor)
        target.copy_(noise.to(target))
    else:
        target.mul_(float(factor))
    return out
