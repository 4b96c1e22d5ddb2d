"""Test fixtures for the engine: a tiny image-folder dataset, tiny trainers and pickling helpers.

Importing this module registers (``force=True``, so re-imports are harmless):

* dataset ``EngineTinyFolder``: ``<DATASET.ROOT>/engine_tiny/{train,val,test}/<class>/*.png``
  (write one with :func:`make_image_folder`); honours ``DATASET.NUM_SHOTS``;
* trainer ``EngineTestTrainer``: a linear classifier on flattened pixels, SGD/cosine from ``cfg.OPTIM``;
* trainer ``EngineZeroShotTrainer``: a fixed (colour-mean) classifier that registers no model.

``train.py`` picks it up in a subprocess with ``PROMPTCLIP_EXTRA_MODULES=tests.helpers.engine_fixtures``.
"""
from __future__ import annotations

import os
import os.path as osp

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from dassl.config import get_cfg_default
from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum
from dassl.engine import TRAINER_REGISTRY, TrainerX
from dassl.metrics import compute_accuracy
from dassl.optim import build_lr_scheduler, build_optimizer
from dassl.utils import listdir_nohidden

DATASET_FOLDER = "engine_tiny"
CLASSNAMES = ["red", "green", "blue"]
_COLOURS = np.array([[135, 110, 110], [110, 135, 110], [110, 110, 135]], dtype=np.float64)


def make_image_folder(root: str, n_train: int = 6, n_val: int = 3, n_test: int = 4, size: int = 12,
                      noise: float = 170.0, seed: int = 0) -> str:
    """Write ``root/engine_tiny/{train,val,test}/<class>/<i>.png`` (noisy solid colours); returns ``root``."""
    rng = np.random.RandomState(seed)
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        for label, cname in enumerate(CLASSNAMES):
            d = osp.join(root, DATASET_FOLDER, split, cname)
            os.makedirs(d, exist_ok=True)
            for i in range(n):
                pixels = _COLOURS[label] + rng.normal(0, noise, size=(size, size, 3))
                img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
                img.save(osp.join(d, f"{i:03d}.png"))
    return root


def _read_split(split_dir: str) -> list[Datum]:
    items = []
    for label, cname in enumerate(CLASSNAMES):
        d = osp.join(split_dir, cname)
        for fname in listdir_nohidden(d, sort=True):
            items.append(Datum(impath=osp.join(d, fname), label=label, classname=cname))
    return items


@DATASET_REGISTRY.register(force=True)
class EngineTinyFolder(DatasetBase):
    """Three colour classes read from a generated folder."""

    dataset_dir = DATASET_FOLDER

    def __init__(self, cfg) -> None:
        root = osp.abspath(osp.expanduser(cfg.DATASET.ROOT))
        self.dataset_dir = osp.join(root, DATASET_FOLDER)
        train = _read_split(osp.join(self.dataset_dir, "train"))
        val = _read_split(osp.join(self.dataset_dir, "val"))
        test = _read_split(osp.join(self.dataset_dir, "test"))
        if cfg.DATASET.NUM_SHOTS >= 1:
            train = self.generate_fewshot_dataset(train, num_shots=cfg.DATASET.NUM_SHOTS)
            val = self.generate_fewshot_dataset(val, num_shots=min(cfg.DATASET.NUM_SHOTS, 4))
        super().__init__(train_x=train, val=val, test=test)


class TinyNet(nn.Module):
    """Linear classifier on flattened pixels: ``[B, 3, H, W] -> [B, num_classes]``."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


@TRAINER_REGISTRY.register(force=True)
class EngineTestTrainer(TrainerX):
    """A tiny trainer exercising the whole engine (register_model, per-epoch LR step, checkpoints)."""

    def build_model(self) -> None:
        h, w = self.cfg.INPUT.SIZE
        self.model = TinyNet(3 * h * w, self.num_classes).to(self.device)
        self.optim = build_optimizer(self.model, self.cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, self.cfg.OPTIM)
        self.register_model("model", self.model, self.optim, self.sched)

    def forward_backward(self, batch) -> dict:
        image, label, _ = self.parse_batch_train(batch)
        output = self.model(image)
        loss = F.cross_entropy(output, label)
        self.model_backward_and_update(loss)
        summary = {"loss": loss.item(), "acc": compute_accuracy(output, label)[0].item()}
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return summary


@TRAINER_REGISTRY.register(force=True)
class EngineZeroShotTrainer(TrainerX):
    """Registers no model: classifies by the dominant colour channel (like zero-shot CLIP, nothing to train)."""

    def build_model(self) -> None:
        self.model = lambda x: x.mean(dim=(2, 3))  # [B, 3] "logits"

    def forward_backward(self, batch) -> dict:  # pragma: no cover - never trained
        return {}


def tiny_cfg(root: str, output_dir: str, **overrides):
    """A default config for ``EngineTestTrainer`` on :func:`make_image_folder` data (mutable)."""
    cfg = get_cfg_default()
    cfg.DATASET.SUBSAMPLE_CLASSES = "all"
    cfg.DATASET.ROOT = root
    cfg.DATASET.NAME = "EngineTinyFolder"
    cfg.TRAINER.NAME = "EngineTestTrainer"
    cfg.OUTPUT_DIR = output_dir
    cfg.SEED = 1
    cfg.USE_CUDA = False
    cfg.INPUT.SIZE = (8, 8)
    cfg.INPUT.TRANSFORMS = ("random_flip", "normalize")
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.DATALOADER.TRAIN_X.BATCH_SIZE = 4
    cfg.DATALOADER.TEST.BATCH_SIZE = 5
    cfg.OPTIM.NAME = "sgd"
    cfg.OPTIM.LR = 0.005
    cfg.OPTIM.MAX_EPOCH = 4
    cfg.OPTIM.LR_SCHEDULER = "cosine"
    cfg.OPTIM.WARMUP_EPOCH = 1
    cfg.OPTIM.WARMUP_TYPE = "constant"
    cfg.OPTIM.WARMUP_CONS_LR = 1e-3
    cfg.TRAIN.PRINT_FREQ = 2
    for key, value in overrides.items():
        node = cfg
        parts = key.split("__")
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value
    return cfg


# ------------------------------------------------------------------------------------------ pickling helpers
def write_marker(path: str) -> None:
    """What a malicious pickle would like to run: create ``path``."""
    with open(path, "w") as f:
        f.write("pwned")


class Evil:
    """Pickles as ``write_marker(path)``: unpickling it with plain pickle creates the marker file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (write_marker, (self.path,))


class EvilSystem:
    """Pickles as ``os.system(cmd)``."""

    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


class UpstreamStyleScheduler:
    """Mimics what upstream Dassl pickled into ``checkpoint["scheduler"]["successor"]``: an object
    holding its optimizer (and thereby the parameters)."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.T_max = 10.0
        self.eta_min = 0.0
        self.base_lrs = [0.002]
        self.last_epoch = 3
        self._step_count = 4
        self._last_lr = [0.0018]
