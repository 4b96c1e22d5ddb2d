"""DePT: Zhang et al., "DePT: Decoupled Prompt Tuning", CVPR 2024 (arXiv:2309.07439).

DePT is a head (``DePT`` in ``HEAD_REGISTRY``) that works on any trainer: ``--head DePT`` (``MODEL.HEAD.NAME``)
or the overlay ``configs/heads/dept.yaml``. The reference trainer names are kept as aliases.
"""
from __future__ import annotations

from dassl.engine import TRAINER_REGISTRY

from .cocoop import CoCoOp
from .coop import CoOp
from .kgcoop import KgCoOp
from .maple import MaPLe
from .prompt_trainer import PromptTrainer


def _with_dept_head(base: type[PromptTrainer]) -> type[PromptTrainer]:
    """Register ``ExtrasLinearProbe<base>``: ``base`` with ``HEAD = "DePT"`` (the reference trainer name)."""
    name = f"ExtrasLinearProbe{base.__name__}"
    attrs = {"HEAD": "DePT", "__doc__": f"{base.__name__} + DePT head.", "__module__": __name__, "__qualname__": name}
    return TRAINER_REGISTRY.register()(type(name, (base,), attrs))


ExtrasLinearProbeCoOp = _with_dept_head(CoOp)
ExtrasLinearProbeCoCoOp = _with_dept_head(CoCoOp)
ExtrasLinearProbeKgCoOp = _with_dept_head(KgCoOp)
ExtrasLinearProbeMaPLe = _with_dept_head(MaPLe)
