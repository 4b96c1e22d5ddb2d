"""CoOpCRT: the corruption experiments of Fu et al., "Nemesis: Normalizing the Soft-prompt Vectors of
Vision-Language Models", ICLR 2024 (low-norm effect). Training is CoOp's."""
from __future__ import annotations

import logging
import os.path as osp
import sys
from typing import Any, Sequence

import torch
from tqdm import tqdm

from dassl.engine import TRAINER_REGISTRY
from dassl.utils.errors import ConfigError
from dassl.utils.tools import atomic_open

from .corruption import corrupt_context
from .prompt_trainer import PromptTrainer

logger = logging.getLogger(__name__)


def corruption_seed(cfg) -> int:
    """Seed of the replacement noise: ``SEED`` (0 when unseeded)."""
    return int(cfg.SEED) if int(cfg.SEED) >= 0 else 0


def save_data_pth(path: str, image_features: torch.Tensor, labels: torch.Tensor, text_features: torch.Tensor,
                  ctx: torch.Tensor, accuracy: float) -> None:
    """Write the corruption record (atomically).

    Keys: ``image_feature`` [N, D] fp16 cpu (L2-normalised), ``label`` [N] int64, ``text_feature`` [C, D]
    fp16 cpu (L2-normalised, computed once), ``prompt_norm`` 0-d (Frobenius norm of the corrupted
    context), ``accuracy`` (fraction in [0, 1], the computed value).
    """
    tf = text_features.float()
    data = {
        "image_feature": image_features.half().cpu(),
        "label": labels.long().cpu(),
        "text_feature": (tf / tf.norm(dim=-1, keepdim=True)).half().cpu(),
        "prompt_norm": ctx.detach().float().norm().cpu(),
        "accuracy": float(accuracy),
    }
    with atomic_open(path, "wb") as f:
        torch.save(data, f)


@torch.no_grad()
def evaluate_text_features(model, evaluator, text_features: torch.Tensor, feats: Sequence[torch.Tensor],
                           labels: Sequence[torch.Tensor]) -> dict[str, Any]:
    """Evaluator results of the head on precomputed image features (one tensor per test batch) and text features."""
    evaluator.reset()
    for f, lab in zip(feats, labels):
        evaluator.process(model.head(f, text_features), lab)
    return evaluator.evaluate()


@torch.no_grad()
def evaluate_context(model, evaluator, ctx: torch.Tensor, feats: Sequence[torch.Tensor],
                     labels: Sequence[torch.Tensor]) -> tuple[dict[str, Any], torch.Tensor]:
    """The one evaluation path of a (corrupted) context: ``(results, text_features)`` of ``model`` with its
    learner's context replaced by ``ctx`` (through :meth:`PromptedCLIP.context_override`, so any learner with a
    context works), on precomputed image features. Learners whose image features depend on the context (visual
    prompts) or whose text depends on the image need a full pass instead (:meth:`CoOpCRT.test` does it)."""
    model.eval()
    with model.context_override(ctx):
        text_features, _ = model.text_features()
    return evaluate_text_features(model, evaluator, text_features, feats, labels), text_features


@torch.no_grad()
def encode_images(model, loader, device, prec: str = "fp32") -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Raw image features and labels of a loader, one tensor per batch (images moved to ``device``)."""
    autocast = torch.autocast(device_type="cuda") if prec == "amp" and torch.device(device).type == "cuda" else None
    feats, labels = [], []
    for batch in tqdm(loader, desc="encode test images", file=sys.stderr, leave=False, disable=None):
        images, lab = batch["img"].to(device), batch["label"].to(device)
        if autocast is not None:
            with autocast:
                feats.append(model.encode_image(images))
        else:
            feats.append(model.encode_image(images))
        labels.append(lab)
    return feats, labels


def images_depend_on_context(learner) -> bool:
    return bool(learner.prompts_image_tower or learner.image_conditioned)


@TRAINER_REGISTRY.register()
class CoOpCRT(PromptTrainer):
    """CoOp training; ``--corrupt-type original|replace|scale --corrupt-position P --crt-factor F`` corrupts the
    context at TEST time (the trained / loaded context itself is never changed) and writes ``OUTPUT_DIR/data.pth``.
    """

    LEARNER = "CoOpPromptLearner"
    HEAD = "Similarity"
    REFERENCE_NODES = ("TRAINER.CoOpCRT",)

    def corruption(self) -> tuple[str, int, float]:
        c = self.cfg.CORRUPT
        return c.TYPE, int(c.POSITION), float(c.FACTOR)

    def corrupted_context(self) -> torch.Tensor:
        kind, pos, factor = self.corruption()
        ctx = self.model.learner.context_vectors()
        if ctx is None:
            raise ConfigError(f"CORRUPT.TYPE {kind}: the learner {type(self.model.learner).__name__} has no context")
        new = corrupt_context(ctx, kind, pos, factor, seed=corruption_seed(self.cfg))
        logger.info(f"Corrupted context: type={kind} position={pos} factor={factor} "
                    f"(prompt norm {new.float().norm():.4f})")
        return new

    def encode_test_images(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Raw image features and labels of the test split, one tensor per test batch."""
        self.set_model_mode("eval")
        return encode_images(self.model, self.test_loader, self.device, self.prec)

    def test(self, split=None):
        kind, _, _ = self.corruption()
        if not kind or (split or self.cfg.TEST.SPLIT) != "test":
            return super().test(split)
        ctx = self.corrupted_context()
        if images_depend_on_context(self.model.learner):
            with self.model.context_override(ctx):
                return super().test(split)
        logger.info("Evaluate on the *test* set")
        feats, labels = self.encode_test_images()
        results, text_features = evaluate_context(self.model, self.evaluator, ctx, feats, labels)
        self.last_results = results
        self._write_results_file("test", results)
        for k, v in results.items():
            if isinstance(v, (int, float)):
                self.write_scalar(f"test/{k}", v, self.epoch)
        f = torch.cat(feats).float()
        save_data_pth(
            osp.join(self.output_dir, "data.pth"), f / f.norm(dim=-1, keepdim=True), torch.cat(labels),
            text_features, ctx, results["accuracy"] / 100.0,
        )
        return list(results.values())[0]
