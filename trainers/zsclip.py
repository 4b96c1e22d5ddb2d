"""Zero-shot CLIP: Radford et al., "Learning Transferable Visual Models From Natural Language Supervision",
ICML 2021. Single template (``ZeroshotCLIP``) or the 7-template ensemble (``ZeroshotCLIP2``)."""
from __future__ import annotations

import torch

from dassl.engine import TRAINER_REGISTRY

from .modules.templates import dataset_template, load_templates  # noqa: F401  (re-exported)
from .prompt_trainer import PromptTrainer


@TRAINER_REGISTRY.register()
class ZeroshotCLIP(PromptTrainer):
    """Hand-crafted prompt per dataset (``TRAINER.ZSCLIP.TEMPLATE`` overrides it); nothing is trained."""

    LEARNER = "HandcraftedPrompts"
    ZERO_SHOT = True  # nothing is trained: --eval-only needs no --model-dir (dassl.engine.preflight)
    REFERENCE_NODES = ("TRAINER.ZSCLIP",)

    def build_model(self) -> None:
        super().build_model()
        self.model.eval()
        with torch.no_grad():
            self.model.text_features()  # encoded once, cached (no parameters can change it)


@TRAINER_REGISTRY.register()
class ZeroshotCLIP2(ZeroshotCLIP):
    """Prompt ensemble: the 7 select ImageNet templates (+ the dataset's template unless the table lists
    the dataset under ``ensemble_without_dataset_template``), normalised features averaged."""

    DEFAULTS = {"MODEL.PROMPT_LEARNER.ENSEMBLE": True}
