"""CoCoOp: Zhou et al., "Conditional Prompt Learning for Vision-Language Models", CVPR 2022 (arXiv:2203.05557)."""
from __future__ import annotations

from dassl.engine import TRAINER_REGISTRY

from .prompt_trainer import PromptTrainer


@TRAINER_REGISTRY.register()
class CoCoOp(PromptTrainer):
    """CoOp context + meta-net bias per image (``CoCoOpPromptLearner``) + cosine head + CE.

    Keys: ``TRAINER.COCOOP.{N_CTX, CTX_INIT, PREC, TEXT_CHUNK}`` (spellings of ``MODEL.PROMPT_LEARNER.*`` /
    ``TRAINER.PREC``). Trainable: ``ctx`` and the meta-net (checkpoint ``prompt_learner/model.pth.tar-N`` with
    keys ``ctx``, ``meta_net.linear{1,2}.*``). Text features are recomputed per image at every step and at test
    time (never cached).
    """

    LEARNER = "CoCoOpPromptLearner"
    REFERENCE_NODES = ("TRAINER.COCOOP",)


@TRAINER_REGISTRY.register()
class CoCoOpNemesis(CoCoOp):
    """CoCoOp + the ``Nemesis`` regulariser (``REGULARISER.NEMESIS.*``); PAN corrupts the shared ctx before the
    meta-net bias is added."""

    REGULARISERS = ("Nemesis",)
