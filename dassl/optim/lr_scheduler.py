"""LR schedulers (Dassl ``dassl.optim.lr_scheduler``), stepped once per epoch.

``build_lr_scheduler`` returns torch's ``StepLR`` / ``MultiStepLR`` / ``CosineAnnealingLR``, wrapped in
our own warm-up scheduler when ``WARMUP_EPOCH > 0``. The wrapper reproduces Dassl's per-epoch
learning rates exactly (the warm-up wrapper's epoch counting included) without Dassl's crash on current torch: it never passes
``verbose`` or ``epoch``, and its ``state_dict()`` holds only plain values (the successor is stored as
its own state dict), so checkpoints load with ``torch.load(weights_only=True)``.

Semantics of the wrapper (``c`` = its own step counter, ``W`` = ``WARMUP_EPOCH``):

* ``c < W``: constant -> ``WARMUP_CONS_LR``; linear -> ``WARMUP_MIN_LR`` at ``c == 0`` else ``base_lr * c / W``;
* ``c == W`` (first time): the successor's last LR (``base_lr``);
* afterwards each ``step()`` steps the successor once and the counter stops.
"""
from __future__ import annotations

from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, MultiStepLR, StepLR

from dassl.utils.errors import ConfigError
from dassl.utils.safe_pickle import stub_state

__all__ = [
    "AVAI_SCHEDS",
    "build_lr_scheduler",
    "ConstantWarmupScheduler",
    "LinearWarmupScheduler",
]

AVAI_SCHEDS = ["single_step", "multi_step", "cosine"]


class _BaseWarmupScheduler(LRScheduler):
    """Warm-up for ``warmup_epoch`` steps, then hand over to ``successor``."""

    def __init__(self, optimizer: Optimizer, successor: LRScheduler, warmup_epoch: int, last_epoch: int = -1) -> None:
        self.successor = successor
        self.warmup_epoch = warmup_epoch
        super().__init__(optimizer, last_epoch)

    def _warmup_lrs(self) -> list[float]:
        raise NotImplementedError

    def get_lr(self) -> list[float]:
        if self.last_epoch >= self.warmup_epoch:
            return list(self.successor.get_last_lr())
        return self._warmup_lrs()

    def step(self, epoch: None = None) -> None:  # noqa: D102 - no deprecated epoch argument
        if epoch is not None:
            raise TypeError("warm-up schedulers are stepped without an epoch argument")
        if self.last_epoch >= self.warmup_epoch:
            self.successor.step()
            self._last_lr = list(self.successor.get_last_lr())
        else:
            super().step()

    def state_dict(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "successor")}
        state["successor"] = self.successor.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        successor_state = stub_state(state.pop("successor", None))  # legacy Dassl files pickle the object
        self.__dict__.update(state)
        if successor_state:
            self.successor.load_state_dict(successor_state)


class ConstantWarmupScheduler(_BaseWarmupScheduler):
    """Constant LR ``cons_lr`` during warm-up."""

    def __init__(self, optimizer: Optimizer, successor: LRScheduler, warmup_epoch: int, cons_lr: float,
                 last_epoch: int = -1) -> None:
        self.cons_lr = cons_lr
        super().__init__(optimizer, successor, warmup_epoch, last_epoch)

    def _warmup_lrs(self) -> list[float]:
        return [self.cons_lr for _ in self.base_lrs]


class LinearWarmupScheduler(_BaseWarmupScheduler):
    """``min_lr`` at step 0, then ``base_lr * step / warmup_epoch``."""

    def __init__(self, optimizer: Optimizer, successor: LRScheduler, warmup_epoch: int, min_lr: float,
                 last_epoch: int = -1) -> None:
        self.min_lr = min_lr
        super().__init__(optimizer, successor, warmup_epoch, last_epoch)

    def _warmup_lrs(self) -> list[float]:
        if self.last_epoch == 0:
            return [self.min_lr for _ in self.base_lrs]
        return [lr * self.last_epoch / self.warmup_epoch for lr in self.base_lrs]


def build_lr_scheduler(optimizer: Optimizer, optim_cfg) -> LRScheduler:
    """Build the per-epoch LR scheduler described by ``optim_cfg`` (the ``OPTIM`` node).

    Raises:
        ConfigError: unknown scheduler or warm-up type, or a malformed ``STEPSIZE``.
    """
    lr_scheduler = optim_cfg.LR_SCHEDULER
    stepsize = optim_cfg.STEPSIZE
    gamma = optim_cfg.GAMMA
    max_epoch = optim_cfg.MAX_EPOCH

    if lr_scheduler not in AVAI_SCHEDS:
        raise ConfigError(f"OPTIM.LR_SCHEDULER={lr_scheduler!r} is not supported; choose one of: {AVAI_SCHEDS}")

    if lr_scheduler == "single_step":
        if isinstance(stepsize, (list, tuple)):
            stepsize = stepsize[-1]
        if not isinstance(stepsize, int) or isinstance(stepsize, bool):
            raise ConfigError(f"OPTIM.STEPSIZE for single_step must be an int, got {type(stepsize).__name__}")
        if stepsize <= 0:
            stepsize = max_epoch
        scheduler: LRScheduler = StepLR(optimizer, step_size=stepsize, gamma=gamma)
    elif lr_scheduler == "multi_step":
        if not isinstance(stepsize, (list, tuple)):
            raise ConfigError(f"OPTIM.STEPSIZE for multi_step must be a list, got {type(stepsize).__name__}")
        scheduler = MultiStepLR(optimizer, milestones=list(stepsize), gamma=gamma)
    else:
        scheduler = CosineAnnealingLR(optimizer, T_max=float(max_epoch))

    if optim_cfg.WARMUP_EPOCH > 0:
        if not optim_cfg.WARMUP_RECOUNT:
            scheduler.last_epoch = optim_cfg.WARMUP_EPOCH
        if optim_cfg.WARMUP_TYPE == "constant":
            scheduler = ConstantWarmupScheduler(optimizer, scheduler, optim_cfg.WARMUP_EPOCH, optim_cfg.WARMUP_CONS_LR)
        elif optim_cfg.WARMUP_TYPE == "linear":
            scheduler = LinearWarmupScheduler(optimizer, scheduler, optim_cfg.WARMUP_EPOCH, optim_cfg.WARMUP_MIN_LR)
        else:
            raise ConfigError(
                f"OPTIM.WARMUP_TYPE={optim_cfg.WARMUP_TYPE!r} is not supported; choose linear or constant"
            )
    return scheduler
