"""MaPLe: Khattak et al., "MaPLe: Multi-modal Prompt Learning", CVPR 2023 (arXiv:2210.03117)."""
from __future__ import annotations

from dassl.engine import TRAINER_REGISTRY

from .prompt_trainer import PromptTrainer


@TRAINER_REGISTRY.register()
class MaPLe(PromptTrainer):
    """Deep multimodal prompts (``MaPLePromptLearner``) + cosine head + CE. ViT backbones only.

    Keys: ``TRAINER.MAPLE.{N_CTX (2), CTX_INIT ("a photo of a"), PREC (fp16), PROMPT_DEPTH (9)}`` (spellings of
    ``MODEL.PROMPT_LEARNER.*`` / ``TRAINER.PREC``). Only the learner's tensors are trained and checkpointed
    (``MultiModalPromptLearner/model.pth.tar-N``); the CLIP encoders stay frozen and in eval mode.
    """

    LEARNER = "MaPLePromptLearner"
    REFERENCE_NODES = ("TRAINER.MAPLE",)


@TRAINER_REGISTRY.register()
class MaPLeNemesis(MaPLe):
    """MaPLe + the ``Nemesis`` regulariser on the first-layer text context (deep prompts unchanged)."""

    REGULARISERS = ("Nemesis",)
