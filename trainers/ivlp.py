"""IVLP: independent vision-language prompting, the MaPLe repository's baseline (Khattak et al., "MaPLe:
Multi-modal Prompt Learning", CVPR 2023, arXiv:2210.03117)."""
from __future__ import annotations

from dassl.engine import TRAINER_REGISTRY

from .prompt_trainer import PromptTrainer


@TRAINER_REGISTRY.register()
class IVLP(PromptTrainer):
    """Independent deep text and vision prompts (``IVLPPromptLearner``) + cosine head + CE.

    Keys: ``TRAINER.IVLP.{N_CTX_TEXT (2; = MODEL.PROMPT_LEARNER.N_CTX), N_CTX_VISION (2), PROMPT_DEPTH_TEXT (9),
    PROMPT_DEPTH_VISION (9; 0 = text prompts only), CTX_INIT ("a photo of a"), PREC (fp16)}`` (spellings of
    ``MODEL.PROMPT_LEARNER.*`` / ``TRAINER.PREC``). Only the learner's tensors are trained and checkpointed
    (``VLPromptLearner/model.pth.tar-N``: ``ctx``, ``compound_prompts_text.*``, ``visual.vpt``,
    ``visual.vpt_deep.*``).
    """

    LEARNER = "IVLPPromptLearner"
    REFERENCE_NODES = ("TRAINER.IVLP",)


@TRAINER_REGISTRY.register()
class IVLPNemesis(IVLP):
    """IVLP + the ``Nemesis`` regulariser (``REGULARISER.NEMESIS.*``; ``TARGET text`` (default): the first-layer
    text context, ``TARGET vision``: the input-level visual prompts)."""

    REGULARISERS = ("Nemesis",)
