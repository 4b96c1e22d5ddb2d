"""RAdam (Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond", ICLR 2020).

Written from the published algorithm. With ``degenerated_to_sgd`` (Dassl's default) the first steps,
where the variance rectification term is undefined (rho_t < 5), take a bias-corrected SGD-with-momentum
step. Weight decay is decoupled: ``p -= lr * weight_decay * p`` before the update.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

import torch
from torch.optim import Optimizer

__all__ = ["RAdam"]


class RAdam(Optimizer):
    """Rectified Adam.

    Args:
        params: parameters or param-group dicts.
        lr: learning rate.
        betas: coefficients of the running averages of the gradient and its square.
        eps: term added to the denominator.
        weight_decay: decoupled weight decay.
        degenerated_to_sgd: take SGD-with-momentum steps while the rectification is undefined.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        degenerated_to_sgd: bool = True,
    ) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0 or not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameters: {betas}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        self.degenerated_to_sgd = degenerated_to_sgd
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
            rho_inf = 2.0 / (1.0 - beta2) - 1.0
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.float()
                if grad.is_sparse:
                    raise RuntimeError("RAdam does not support sparse gradients")
                p_fp32 = p.float()

                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p_fp32)
                    state["exp_avg_sq"] = torch.zeros_like(p_fp32)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                state["step"] += 1
                t = state["step"]

                exp_avg.mul_(beta1).add_(grad, alpha=1.0 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)

                bias_c1 = 1.0 - beta1**t
                beta2_t = beta2**t
                rho_t = rho_inf - 2.0 * t * beta2_t / (1.0 - beta2_t)

                if rho_t >= 5.0:
                    rect = math.sqrt(
                        (rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)
                    )
                    step_size = lr * rect * math.sqrt(1.0 - beta2_t) / bias_c1
                    if wd != 0:
                        p_fp32.mul_(1.0 - wd * lr)
                    denom = exp_avg_sq.sqrt().add_(eps)
                    p_fp32.addcdiv_(exp_avg, denom, value=-step_size)
                elif self.degenerated_to_sgd:
                    step_size = lr / bias_c1
                    if wd != 0:
                        p_fp32.mul_(1.0 - wd * lr)
                    p_fp32.add_(exp_avg, alpha=-step_size)
                else:
                    continue

                if p.dtype != torch.float32:
                    p.copy_(p_fp32)
        return loss
