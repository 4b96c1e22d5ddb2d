"""KgCoOp: Yao et al., "Visual-Language Prompt Tuning with Knowledge-guided Context Optimization", CVPR 2023
(arXiv:2303.13283)."""
from __future__ import annotations

from dassl.engine import TRAINER_REGISTRY

from .prompt_trainer import PromptTrainer


@TRAINER_REGISTRY.register()
class KgCoOp(PromptTrainer):
    """The CoOp learner + the ``KgCoOp`` regulariser: ``CE + W * (1 - mean_c cos(t_c, w_c^clip))``.

    Keys: ``TRAINER.COOP.{N_CTX, CSC, CTX_INIT, PREC, CLASS_TOKEN_POSITION, W, ALPHA (unused)}`` (spellings of
    ``MODEL.PROMPT_LEARNER.*``, ``TRAINER.PREC`` and ``REGULARISER.KGCOOP.W``). ``CTX_INIT``: a string is used as
    given, the configs' boolean True means "a photo of a", False/"" random (the reference ignored the string).
    The anchors come from the same frozen text encoder; amp covers the KG term too.
    """

    LEARNER = "CoOpPromptLearner"
    REFERENCE_NODES = ("TRAINER.COOP", "TRAINER.CoOp")
    REGULARISERS = ("KgCoOp",)


@TRAINER_REGISTRY.register()
class KgCoOpNemesis(KgCoOp):
    """KgCoOp + the ``Nemesis`` regulariser (``REGULARISER.NEMESIS.*``)."""

    REGULARISERS = ("KgCoOp", "Nemesis")
