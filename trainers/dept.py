"""DePT: Zhang et al., "DePT: Decoupled Prompt Tuning", CVPR 2024 (arXiv:2309.07439).

DePT is a head (``DePT`` in ``HEAD_REGISTRY``) that works on any trainer: ``--head DePT`` (``MODEL.HEAD.NAME``)
or the overlay ``configs/heads/dept.yaml``. The reference trainer names are kept as tables of defaults.
"""
from __future__ import annotations

from dassl.engine import TRAINER_REGISTRY

from .cocoop import CoCoOp
from .coop import CoOp
from .kgcoop import KgCoOp
from .maple import MaPLe


@TRAINER_REGISTRY.register()
class ExtrasLinearProbeCoOp(CoOp):
    """CoOp + DePT head."""

    HEAD = "DePT"


@TRAINER_REGISTRY.register()
class ExtrasLinearProbeCoCoOp(CoCoOp):
    """CoCoOp + DePT head."""

    HEAD = "DePT"


@TRAINER_REGISTRY.register()
class ExtrasLinearProbeKgCoOp(KgCoOp):
    """KgCoOp + DePT head."""

    HEAD = "DePT"


@TRAINER_REGISTRY.register()
class ExtrasLinearProbeMaPLe(MaPLe):
    """MaPLe + DePT head."""

    HEAD = "DePT"
