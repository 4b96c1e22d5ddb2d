"""CoOp: Zhou et al., "Learning to Prompt for Vision-Language Models", IJCV 2022 (arXiv:2109.01134)."""
from __future__ import annotations

from dassl.engine import TRAINER_REGISTRY

from .prompt_trainer import PromptTrainer


@TRAINER_REGISTRY.register()
class CoOp(PromptTrainer):
    """Context Optimization: learnable context (generic or class-specific) + cosine head + CE.

    Keys: ``MODEL.PROMPT_LEARNER.*`` / ``TRAINER.PREC``, spelled ``TRAINER.COOP.*`` (or the Nemesis fork's
    ``TRAINER.CoOp.*``). Logs the context's Frobenius norm and per-position norms every step (as the Nemesis
    fork's CoOp does).
    """

    LEARNER = "CoOpPromptLearner"
    HEAD = "Similarity"
    REFERENCE_NODES = ("TRAINER.COOP", "TRAINER.CoOp")
