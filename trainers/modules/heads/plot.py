"""PLOT's optimal-transport head (Chen et al., "PLOT: Prompt Learning with Optimal Transport for Vision-Language
Models", ICLR 2023; the ShyFoo/Nemesis fork's ``trainers/plot.py``).

For image b and class c, with the L2-normalised local image features ``f_bt`` (t = 1..T) and the class's N text
features ``g_cn`` (one per prompt set): ``S_tn = <f_bt, g_cn>``, cost ``1 - S``, kernel ``K = exp(-(1 - S)/eps)``,
uniform marginals ``1/T`` and ``1/N``; the Sinkhorn iterations (at most ``max_iter``) stop once the mean absolute
change of the row scaling ``u`` over the whole batch (every image and class at once, as the reference runs them)
falls below ``thresh``; the plan ``P = diag(u) K diag(v)`` carries no gradient; ``logit_bc = tau * sum(P * S)``.
All images x classes of a step are one batched tensor program (no Python loop over images or classes).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from dassl.utils.errors import NonFiniteLossError

from ..options import OptionError, Options, check_number, option
from ..registry import HEAD_REGISTRY
from .base import Head

__all__ = ["PLOT", "PLOTHeadOptions", "TransportPlanError", "sinkhorn", "transport_logits"]


class TransportPlanError(NonFiniteLossError):
    """The Sinkhorn plan has NaN/Inf entries (the reference's forward returned None and crashed later)."""


@dataclass
class PLOTHeadOptions(Options):
    """Options of the :class:`PLOT` head (node ``MODEL.HEAD.PLOT``; the reference hard-codes these values)."""

    eps: float = option(0.1, "EPS", "entropic regularisation of the transport (K = exp(-(1 - S) / EPS))")
    max_iter: int = option(100, "MAX_ITER", "most Sinkhorn iterations")
    thresh: float = option(0.01, "THRESH", "stop when the mean |change| of the row scaling u is below this")

    def __post_init__(self) -> None:
        check_number("EPS", self.eps, low=0.0, low_open=True)
        check_number("THRESH", self.thresh, low=0.0)
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise OptionError("MAX_ITER", f"must be a positive integer, got {self.max_iter!r}")

    def constructor_kwargs(self, cfg) -> dict[str, Any]:
        return dict(eps=float(self.eps), max_iter=int(self.max_iter), thresh=float(self.thresh))


@torch.no_grad()
def sinkhorn(kernel: torch.Tensor, max_iter: int = 100, thresh: float = 0.01) -> tuple[torch.Tensor, int]:
    """Entropic OT plans with uniform marginals for a batch of kernels.

    Args:
        kernel: ``[P, T, N]`` positive kernels ``exp(-cost / eps)`` (P problems).
        max_iter: most iterations.
        thresh: stop after the first iteration whose mean ``|u - u_prev|`` over ALL P problems is below it
            (``u`` starts at 1); 0 runs ``max_iter`` iterations.

    Returns:
        (plans ``[P, T, N]`` = ``u_i K_ij v_j`` with row sums ``1/T`` and column sums ``1/N`` at convergence,
        number of iterations run).
    """
    p, t, n = kernel.shape
    r = torch.full((p, t), 1.0 / t, dtype=kernel.dtype, device=kernel.device)  # row marginal
    c = torch.full((p, n), 1.0 / n, dtype=kernel.dtype, device=kernel.device)  # column marginal
    u = torch.ones_like(r)
    v = torch.ones_like(c)
    it = 0
    for it in range(1, max_iter + 1):
        u_prev = u
        u = r / torch.bmm(kernel, v.unsqueeze(-1)).squeeze(-1)  # [P, T]
        v = c / torch.bmm(kernel.transpose(1, 2), u.unsqueeze(-1)).squeeze(-1)  # [P, N]
        if (u - u_prev).abs().mean().item() < thresh:
            break
    return u.unsqueeze(-1) * kernel * v.unsqueeze(-2), it


def similarities(image_features: torch.Tensor, text_features: torch.Tensor, n_cls: int) -> torch.Tensor:
    """Cosine similarities ``[B, C, T, N]`` of local image features and the N text features of every class.

    Args:
        image_features: ``[B, T, D]`` local features (``[B, D]`` = one token).
        text_features: ``[N*C, D]`` set-major, or ``[B, N*C, D]`` per image (image-conditioned learners).
        n_cls: C.
    """
    if image_features.dim() == 2:
        image_features = image_features.unsqueeze(1)
    f = image_features / image_features.norm(dim=-1, keepdim=True)
    g = text_features / text_features.norm(dim=-1, keepdim=True)
    if g.shape[-2] % n_cls:
        raise ValueError(f"text features {tuple(g.shape)}: the set axis is not a multiple of C = {n_cls}")
    n_sets = g.shape[-2] // n_cls
    if g.dim() == 2:
        return torch.einsum("btd,ncd->bctn", f, g.view(n_sets, n_cls, -1))
    return torch.einsum("btd,bncd->bctn", f, g.view(g.shape[0], n_sets, n_cls, -1))


def transport_logits(sim: torch.Tensor, scale: torch.Tensor | float, eps: float = 0.1, max_iter: int = 100,
                     thresh: float = 0.01) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(logits [B, C], plans [B, C, T, N], iterations)`` of similarities ``[B, C, T, N]`` (one Sinkhorn batch).

    Raises:
        TransportPlanError: a plan with NaN/Inf entries.
    """
    b, c, t, n = sim.shape
    flat = sim.reshape(b * c, t, n)
    with torch.no_grad():
        plan, iters = sinkhorn(torch.exp(-(1.0 - flat) / eps), max_iter, thresh)
    if not torch.isfinite(plan).all():
        bad = int((~torch.isfinite(plan)).sum())
        raise TransportPlanError(
            f"the PLOT transport plan has {bad} NaN/Inf entries ({sim.dtype} features, EPS {eps}, {iters} Sinkhorn "
            "iterations): train with PREC fp32 or amp, or raise MODEL.HEAD.PLOT.EPS"
        )
    logits = (plan * flat).sum(dim=(1, 2)).view(b, c)
    return scale * logits, plan.view(b, c, t, n), iters


@HEAD_REGISTRY.register(options=PLOTHeadOptions)
class PLOT(Head):
    """Optimal-transport logits between local image features and N prompt-set text features per class.

    ``forward(image_features [B, T, D], text_features [N*C, D] | [B, N*C, D]) -> [B, C]`` in the features' dtype
    (the reference computes in CLIP's dtype). Consumes local features (``needs_local_features``: the model passes
    ``clip.encode_image_tokens``) and the unaveraged set features (``uses_prompt_sets``). With one text feature per
    class (N = 1: any other learner) the plan is uniform and the logit is ``tau * mean_t S_t``.

    Args:
        clip_model: frozen CLIP (tau).
        classnames: the C classes.
        eps, max_iter, thresh: Sinkhorn settings (the reference's 0.1, 100, 0.01).
    """

    needs_local_features = True
    uses_prompt_sets = True

    def __init__(self, clip_model, classnames, eps: float = 0.1, max_iter: int = 100, thresh: float = 0.01) -> None:
        super().__init__(clip_model, classnames)
        self.n_cls = len(classnames)
        self.eps = float(eps)
        self.max_iter = int(max_iter)
        self.thresh = float(thresh)
        self.last_iterations = 0

    def forward(self, image_features, text_features, labels=None):
        sim = similarities(image_features, text_features, self.n_cls)  # [B, C, T, N]
        scale = self.logit_scale.to(sim.dtype)
        logits, _, self.last_iterations = transport_logits(sim, scale, self.eps, self.max_iter, self.thresh)
        return logits
