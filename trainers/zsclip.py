"""Zero-shot CLIP: Radford et al., "Learning Transferable Visual Models From Natural Language Supervision",
ICML 2021. Single template (``ZeroshotCLIP``) or the 7-template ensemble (``ZeroshotCLIP2``)."""
from __future__ import annotations

import json
import os.path as osp

import torch

from dassl.engine import TRAINER_REGISTRY

from .prompt_trainer import PromptTrainer

_TEMPLATE_FILE = osp.join(osp.dirname(__file__), "data", "templates.json")


def load_templates() -> dict:
    """The template table (data, keyed by ``DATASET.NAME``): ``{"dataset": {...}, "default": str,
    "ensemble": [...], "ensemble_without_dataset_template": [...]}``."""
    with open(_TEMPLATE_FILE) as f:
        return json.load(f)


def dataset_template(cfg) -> str:
    """``TRAINER.ZSCLIP.TEMPLATE`` if set, else the table's entry for ``DATASET.NAME`` (else the default)."""
    if cfg.TRAINER.ZSCLIP.TEMPLATE:
        return cfg.TRAINER.ZSCLIP.TEMPLATE
    table = load_templates()
    return table["dataset"].get(cfg.DATASET.NAME, table["default"])


@TRAINER_REGISTRY.register()
class ZeroshotCLIP(PromptTrainer):
    """Hand-crafted prompt per dataset; text features encoded once at build; nothing is trained."""

    LEARNER = "HandcraftedPrompts"
    PROMPT_NODE = None
    ZERO_SHOT = True  # nothing is trained: --eval-only needs no --model-dir (dassl.engine.preflight)

    def precision(self) -> str:
        return self.cfg.TRAINER.ZSCLIP.PREC

    def templates(self) -> list[str]:
        return [dataset_template(self.cfg)]

    def learner_kwargs(self):
        return {"templates": self.templates()}

    def build_model(self) -> None:
        super().build_model()
        self.model.eval()
        with torch.no_grad():
            self.model.text_features()  # encoded once, cached (no parameters can change it)

    def test(self, split=None):
        return super(PromptTrainer, self).test(split)  # keep the build-time text features


@TRAINER_REGISTRY.register()
class ZeroshotCLIP2(ZeroshotCLIP):
    """Prompt ensemble: the 7 select ImageNet templates (+ the dataset's template unless the table lists
    the dataset under ``ensemble_without_dataset_template``), normalised features averaged."""

    def templates(self) -> list[str]:
        table = load_templates()
        temps = list(table["ensemble"])  # a fresh list: no class-level mutation (reference defect C1)
        if self.cfg.DATASET.NAME not in table["ensemble_without_dataset_template"]:
            temps.append(dataset_template(self.cfg))
        return temps
