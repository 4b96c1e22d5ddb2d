"""Trainers. Importing this package registers every trainer in ``TRAINER_REGISTRY`` and every
component in the learner/head/regulariser registries."""
from clip.config import normalize_pretrained
from dassl.engine import TRAINER_REGISTRY, build_trainer

from . import cocoop, coop, coop_crt, coop_nemesis, dept, ivlp, kgcoop, maple, plot, vpt, zsclip  # noqa: F401  (registration)
from .cocoop import CoCoOp, CoCoOpNemesis
from .config import add_trainer_cfg, resolve_cfg
from .coop import CoOp
from .coop_crt import CoOpCRT
from .coop_nemesis import CoOpNemesis
from .dept import ExtrasLinearProbeCoCoOp, ExtrasLinearProbeCoOp, ExtrasLinearProbeKgCoOp, ExtrasLinearProbeMaPLe
from .ivlp import IVLP, IVLPNemesis
from .kgcoop import KgCoOp, KgCoOpNemesis
from .maple import MaPLe, MaPLeNemesis
from .plot import PLOT, PLOTNemesis
from .modules import HEAD_REGISTRY, PROMPT_LEARNER_REGISTRY, REGULARISER_REGISTRY
from .modules.factory import build_prompted_clip
from .prompt_trainer import PromptTrainer
from .vpt import VPT, VPTNemesis
from .zsclip import ZeroshotCLIP, ZeroshotCLIP2

REGISTRIES = {
    "trainer": TRAINER_REGISTRY,
    "learner": PROMPT_LEARNER_REGISTRY,
    "head": HEAD_REGISTRY,
    "regulariser": REGULARISER_REGISTRY,
}

#: config hooks called by ``dassl.config.setup.setup_cfg``
extend_cfg = add_trainer_cfg


def after_file_merges(cfg) -> None:
    """Dassl YAMLs' ``MODEL.BACKBONE.PRETRAINED: True`` -> None, so that a tag given on the command line merges."""
    normalize_pretrained(cfg)

__all__ = [
    "add_trainer_cfg", "extend_cfg", "resolve_cfg", "build_prompted_clip", "build_trainer", "REGISTRIES", "TRAINER_REGISTRY", "PROMPT_LEARNER_REGISTRY",
    "HEAD_REGISTRY", "REGULARISER_REGISTRY", "PromptTrainer", "CoOp", "CoOpNemesis", "CoOpCRT",
    "ZeroshotCLIP", "ZeroshotCLIP2", "CoCoOp", "CoCoOpNemesis", "KgCoOp", "KgCoOpNemesis", "MaPLe", "MaPLeNemesis",
    "ExtrasLinearProbeCoOp", "ExtrasLinearProbeCoCoOp", "ExtrasLinearProbeKgCoOp", "ExtrasLinearProbeMaPLe",
    "IVLP", "IVLPNemesis", "VPT", "VPTNemesis", "PLOT", "PLOTNemesis",
]
