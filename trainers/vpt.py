"""VPT: deep visual prompt tuning on CLIP (Jia et al., "Visual Prompt Tuning", ECCV 2022), as in the MaPLe
repository."""
from __future__ import annotations

from dassl.engine import TRAINER_REGISTRY

from .prompt_trainer import PromptTrainer


@TRAINER_REGISTRY.register()
class VPT(PromptTrainer):
    """Deep visual prompts (``VPTPromptLearner``) + the fixed hand-crafted text ``"a photo of a {}."`` + cosine head
    + CE. The text features are computed once (the learner's text depends on no trainable tensor) and reused in
    every step and at test time.

    Keys: ``TRAINER.VPT.{N_CTX_VISION (2), PROMPT_DEPTH_VISION (1), CTX_INIT ("a photo of a"), PREC (fp32: the
    reference runs VPT in fp32)}``. Checkpoint ``prompt_learner/model.pth.tar-N`` (``visual.vpt``,
    ``visual.vpt_deep.*``).
    """

    LEARNER = "VPTPromptLearner"
    REFERENCE_NODES = ("TRAINER.VPT",)
    DEFAULTS = {"TRAINER.PREC": "fp32"}


@TRAINER_REGISTRY.register()
class VPTNemesis(VPT):
    """VPT + the ``Nemesis`` regulariser on the input-level visual prompts (``REGULARISER.NEMESIS.TARGET`` defaults
    to ``vision`` here: VPT has no text context)."""

    REGULARISERS = ("Nemesis",)
    DEFAULTS = {**VPT.DEFAULTS, "REGULARISER.NEMESIS.TARGET": "vision"}
