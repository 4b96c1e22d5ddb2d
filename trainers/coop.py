"""CoOp: Zhou et al., "Learning to Prompt for Vision-Language Models", IJCV 2022 (arXiv:2109.01134)."""
from __future__ import annotations

from dassl.engine import TRAINER_REGISTRY

from .prompt_trainer import PromptTrainer


@TRAINER_REGISTRY.register()
class CoOp(PromptTrainer):
    """Context Optimization: learnable context (generic or class-specific) + cosine head + CE.

    Keys: ``TRAINER.COOP.*`` (``TRAINER.CoOp.*`` accepted as the Nemesis fork's alias). Logs the
    context's Frobenius norm and per-position norms every step (as the Nemesis fork's CoOp does).
    """

    LEARNER = "CoOpPromptLearner"
    HEAD = "Similarity"
    PROMPT_NODE = "COOP"
