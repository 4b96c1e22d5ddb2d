"""MaPLe: Khattak et al., "MaPLe: Multi-modal Prompt Learning", CVPR 2023 (arXiv:2210.03117)."""
from __future__ import annotations

from typing import Any

from dassl.engine import TRAINER_REGISTRY

from .prompt_trainer import PromptTrainer


@TRAINER_REGISTRY.register()
class MaPLe(PromptTrainer):
    """Deep multimodal prompts (``MaPLePromptLearner``) + cosine head + CE. ViT backbones only.

    Keys: ``TRAINER.MAPLE.{N_CTX (2), CTX_INIT ("a photo of a"), PREC (fp16), PROMPT_DEPTH (9)}``. Only the
    learner's tensors are trained and checkpointed (``MultiModalPromptLearner/model.pth.tar-N``); the CLIP
    encoders stay frozen and in eval mode.
    """

    LEARNER = "MaPLePromptLearner"
    PROMPT_NODE = "MAPLE"
    LEARNER_NAME = "MultiModalPromptLearner"

    def learner_kwargs(self) -> dict[str, Any]:
        s = self.prompt_settings(self.cfg)
        return dict(n_ctx=s["N_CTX"], ctx_init=s["CTX_INIT"], prompt_depth=self.cfg.TRAINER.MAPLE.PROMPT_DEPTH)


@TRAINER_REGISTRY.register()
class MaPLeNemesis(MaPLe):
    """MaPLe + the ``Nemesis`` regulariser on the first-layer text context (deep prompts unchanged)."""

    REGULARISERS = ("Nemesis",)
