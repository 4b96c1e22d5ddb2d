"""CoOp + Nemesis: Fu et al., "Nemesis: Normalizing the Soft-prompt Vectors of Vision-Language Models",
ICLR 2024 (https://openreview.net/forum?id=zmJDzPh1Dm)."""
from __future__ import annotations

from typing import Any

from dassl.engine import TRAINER_REGISTRY

from .config import nemesis_options
from .prompt_trainer import PromptTrainer


@TRAINER_REGISTRY.register()
class CoOpNemesis(PromptTrainer):
    """The CoOp learner plus the ``Nemesis`` regulariser (PUN / PAN / mix by BETA).

    Keys: ``TRAINER.CoOpNemesis.{N_CTX,CSC,CTX_INIT,PREC,CLASS_TOKEN_POSITION,A,NT,NP,CW,BETA}``, with
    ``REGULARISER.NEMESIS.*`` as fallback for A..BETA and for ``PAN_SCALE`` / ``OMEGA``.
    """

    LEARNER = "CoOpPromptLearner"
    HEAD = "Similarity"
    REGULARISERS = ("Nemesis",)
    PROMPT_NODE = "CoOpNemesis"

    def regulariser_kwargs(self, cfg, name: str) -> dict[str, Any]:
        if name == "Nemesis":
            return nemesis_options(cfg, "CoOpNemesis")
        return super().regulariser_kwargs(cfg, name)
