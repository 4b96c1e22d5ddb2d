"""CoOpCRT: the corruption experiments of Fu et al., "Nemesis: Normalizing the Soft-prompt Vectors of
Vision-Language Models", ICLR 2024 (low-norm effect). Training is CoOp's."""
from __future__ import annotations

import logging
import os
import os.path as osp
import sys
from typing import Any

import torch
from tqdm import tqdm

from dassl.engine import TRAINER_REGISTRY

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
    tmp = path + ".tmp"
    torch.save(data, tmp)
    os.replace(tmp, path)


@TRAINER_REGISTRY.register()
class CoOpCRT(PromptTrainer):
    """CoOp training; with ``--eval-only --corrupt-type original|replace|scale --corrupt-position P
    --crt-factor F`` the loaded context is corrupted and ``OUTPUT_DIR/data.pth`` is written."""

    LEARNER = "CoOpPromptLearner"
    HEAD = "Similarity"
    PROMPT_NODE = "CoOpCRT"

    def corruption(self) -> tuple[str, int, float]:
        c = self.cfg.CORRUPT
        return c.TYPE, int(c.POSITION), float(c.FACTOR)

    def load_model(self, directory, epoch=None) -> None:
        super().load_model(directory, epoch)
        kind, pos, factor = self.corruption()
        if kind:
            self.apply_corruption(kind, pos, factor)

    @torch.no_grad()
    def apply_corruption(self, kind: str, position: int, factor: float) -> None:
        learner = self.model.learner
        new = corrupt_context(learner.ctx, kind, position, factor, seed=corruption_seed(self.cfg))
        learner.ctx.copy_(new)
        logger.info(f"Corrupted context: type={kind} position={position} factor={factor} "
                    f"(prompt norm {new.float().norm():.4f})")
        self.model.invalidate_cache()

    @torch.no_grad()
    def encode_test_images(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Raw image features and labels of the test split, one tensor per test batch."""
        self.set_model_mode("eval")
        feats, labels = [], []
        for batch in tqdm(self.test_loader, desc="encode test images", file=sys.stderr, leave=False, disable=None):
            images, lab = self.parse_batch_test(batch)
            with self.autocast():
                feats.append(self.model.encode_image(images))
            labels.append(lab)
        return feats, labels

    @torch.no_grad()
    def evaluate_features(self, feats: list[torch.Tensor], labels: list[torch.Tensor]) -> dict[str, Any]:
        """Evaluator results for precomputed image features and the current (possibly corrupted) context."""
        self.set_model_mode("eval")
        self.evaluator.reset()
        text_features, _ = self.model.text_features()
        for f, lab in zip(feats, labels):
            self.evaluator.process(self.model.head(f, text_features), lab)
        results = self.evaluator.evaluate()
        return {"results": results, "text_features": text_features}

    def test(self, split=None):
        kind, _, _ = self.corruption()
        if not kind or (split or self.cfg.TEST.SPLIT) != "test":
            return super().test(split)
        self.model.invalidate_cache()
        logger.info("Evaluate on the *test* set")
        feats, labels = self.encode_test_images()
        res = self.evaluate_features(feats, labels)
        results = res["results"]
        self.last_results = results
        self._write_results_file("test", results)
        for k, v in results.items():
            if isinstance(v, (int, float)):
                self.write_scalar(f"test/{k}", v, self.epoch)
        f = torch.cat(feats).float()
        save_data_pth(
            osp.join(self.output_dir, "data.pth"), f / f.norm(dim=-1, keepdim=True), torch.cat(labels),
            res["text_features"], self.model.learner.ctx, results["accuracy"] / 100.0,
        )
        return list(results.values())[0]
