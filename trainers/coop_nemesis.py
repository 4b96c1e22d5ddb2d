"""CoOp + Nemesis: Fu et al., "Nemesis: Normalizing the Soft-prompt Vectors of Vision-Language Models",
ICLR 2024 (https://openreview.net/forum?id=zmJDzPh1Dm)."""
from __future__ import annotations

from dassl.engine import TRAINER_REGISTRY

from .prompt_trainer import PromptTrainer


@TRAINER_REGISTRY.register()
class CoOpNemesis(PromptTrainer):
    """The CoOp learner plus the ``Nemesis`` regulariser (PUN / PAN / mix by BETA).

    Keys: ``TRAINER.CoOpNemesis.{N_CTX,CSC,CTX_INIT,PREC,CLASS_TOKEN_POSITION}`` (spellings of
    ``MODEL.PROMPT_LEARNER.*`` / ``TRAINER.PREC``) and ``TRAINER.CoOpNemesis.{A,NT,NP,CW,BETA}`` (spellings of
    ``REGULARISER.NEMESIS.*``, which also holds ``PAN_SCALE`` / ``OMEGA``).
    """

    LEARNER = "CoOpPromptLearner"
    HEAD = "Similarity"
    REGULARISERS = ("Nemesis",)
    REFERENCE_NODES = ("TRAINER.CoOpNemesis",)
