"""Optimisers and LR schedulers (Dassl ``dassl.optim``)."""
from .lr_scheduler import AVAI_SCHEDS, ConstantWarmupScheduler, LinearWarmupScheduler, build_lr_scheduler
from .optimizer import AVAI_OPTIMS, build_optimizer
from .radam import RAdam

__all__ = [
    "AVAI_OPTIMS",
    "AVAI_SCHEDS",
    "ConstantWarmupScheduler",
    "LinearWarmupScheduler",
    "RAdam",
    "build_lr_scheduler",
    "build_optimizer",
]
