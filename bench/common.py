"""Shared set-up of the step / memory / GPU benches: a registered trainer on a random CLIP, without a dataset.

``make_trainer(name, classes, backbone, opts)`` builds the real trainer class (``trainers``' registry: its learner,
head, regularisers, optimiser and ``forward_backward``) with ``C`` synthetic class names, so a bench times exactly
the training step a run executes; only the data loader is replaced (a fixed random batch is passed instead).
"""
from __future__ import annotations

import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch  # noqa: E402

#: random CLIP sizes (keyword arguments of ``clip.model.build_clip_from_config``)
SIZES = {
    # CPU fixtures: text tower 256 wide x 4 layers, 32 px images
    "small-vit": dict(embed_dim=256, transformer_width=256, transformer_heads=4, transformer_layers=4,
                      vision_width=128, vision_layers=2, vision_patch_size=8, image_resolution=32),
    "small-rn": dict(embed_dim=256, transformer_width=256, transformer_heads=4, transformer_layers=4,
                     vision_width=32, vision_layers=(1, 1, 1, 1), vision_patch_size=None, image_resolution=32),
    # tiny (CI fallback of bench/gpu.py)
    "tiny-vit": dict(),
    # the real architectures' sizes, random weights (GPU)
    "ViT-B/16": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=16,
                     transformer_width=512, transformer_heads=8, transformer_layers=12),
    "RN50": dict(embed_dim=1024, image_resolution=224, vision_layers=(3, 4, 6, 3), vision_width=64,
                 vision_patch_size=None, transformer_width=512, transformer_heads=8, transformer_layers=12),
}

_BACKBONES: dict[str, str] = {}
_TMP = tempfile.TemporaryDirectory(prefix="bench-")


def backbone_file(size: str) -> str:
    """Path of a random CLIP state dict of ``size`` (seed 0), written once per process."""
    if size not in _BACKBONES:
        from clip.model import build_clip_from_config

        torch.manual_seed(0)
        model = build_clip_from_config(**SIZES[size])
        path = os.path.join(_TMP.name, size.replace("/", "-") + ".pt")
        torch.save(model.state_dict(), path)
        _BACKBONES[size] = path
    return _BACKBONES[size]


def image_size(size: str) -> int:
    return int(SIZES[size].get("image_resolution", 32))


def make_trainer(trainer: str, classes: int, size: str, opts: list[str] | None = None, device: str = "cpu",
                 prec: str = "fp32", seed: int = 1):
    """The registered ``trainer`` with ``classes`` synthetic class names on a random CLIP of ``size``."""
    import train  # noqa: F401  (plugins: trainers, datasets)
    from dassl.config.setup import parse_args, setup_cfg
    from dassl.engine import TRAINER_REGISTRY
    from dassl.utils import set_random_seed

    px = image_size(size)
    overlay = os.path.join(_TMP.name, f"bench_{px}.yaml")
    with open(overlay, "w") as f:
        f.write(f"INPUT:\n  SIZE: ({px}, {px})\nOPTIM:\n  NAME: sgd\n  LR: 0.002\n  MAX_EPOCH: 10\n"
                f"USE_CUDA: {device != 'cpu'}\n")
    argv = ["--trainer", trainer, "--config-file", overlay, "--output-dir", os.path.join(_TMP.name, "out"),
            "--seed", str(seed), "MODEL.BACKBONE.NAME", backbone_file(size), "TRAINER.PREC", prec, *(opts or [])]
    cfg = setup_cfg(parse_args(argv))
    set_random_seed(seed)
    cls = TRAINER_REGISTRY.get(cfg.TRAINER.NAME)
    names = [f"synthetic class {i}" for i in range(classes)]

    class BenchTrainer(cls):  # the trainer as registered; only the data loader is replaced
        def build_data_loader(self) -> None:
            self.train_loader_x = self.train_loader_u = self.val_loader = self.test_loader = None
            self.num_classes = classes
            self.num_source_domains = 1
            self.lab2cname = dict(enumerate(names))
            self.dm = None

    BenchTrainer.__name__ = cls.__name__
    t = BenchTrainer(cfg)
    t.epoch, t.max_epoch, t.batch_idx, t.num_batches = 0, cfg.OPTIM.MAX_EPOCH, 0, 10**9
    for reg in getattr(t, "regularisers", []):
        reg.on_epoch_start(0, cfg.OPTIM.MAX_EPOCH)
    t.set_model_mode("train")
    return t


def batch(size: str, classes: int, batch_size: int, device: str = "cpu", seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    px = image_size(size)
    return {"img": torch.randn(batch_size, 3, px, px, generator=g).to(device),
            "label": torch.randint(0, classes, (batch_size,), generator=g).to(device)}


#: (label, trainer, opts) of the methods the benches run (PAN: NP 2, CW 0.5 as scripts/coop_nemesis/main.sh)
METHODS = [
    ("CoOp", "CoOp", ["TRAINER.COOP.N_CTX", "16"]),
    ("PUN", "CoOpNemesis", ["TRAINER.CoOpNemesis.N_CTX", "16", "TRAINER.CoOpNemesis.A", "1.0",
                            "TRAINER.CoOpNemesis.BETA", "1.0"]),
    ("PAN", "CoOpNemesis", ["TRAINER.CoOpNemesis.N_CTX", "16", "TRAINER.CoOpNemesis.A", "1.0",
                            "TRAINER.CoOpNemesis.BETA", "0.0", "TRAINER.CoOpNemesis.NP", "2",
                            "TRAINER.CoOpNemesis.CW", "0.5"]),
    ("CoCoOp", "CoCoOp", ["TRAINER.COCOOP.N_CTX", "4"]),
    ("KgCoOp", "KgCoOp", ["TRAINER.COOP.N_CTX", "4"]),
    ("MaPLe", "MaPLe", ["TRAINER.MAPLE.N_CTX", "2", "TRAINER.MAPLE.PROMPT_DEPTH", "3"]),
]


def registered(trainer: str) -> bool:
    import train  # noqa: F401
    from dassl.config.setup import import_plugins
    from dassl.engine import TRAINER_REGISTRY

    import_plugins()
    return trainer in TRAINER_REGISTRY.registered_names()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
