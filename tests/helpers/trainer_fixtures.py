"""Tiny CLIPs and reference-style checkpoints for the trainer tests (no downloads)."""
from __future__ import annotations

import os

import torch


def tiny_clip(seed: int = 0, resnet: bool = False):
    """Random fp32 CLIP: width 64, 2 layers, 32 px (ViT patch 8, or a tiny ModifiedResNet)."""
    from clip.model import build_clip_from_config

    torch.manual_seed(seed)
    if resnet:
        return build_clip_from_config(vision_layers=(1, 1, 1, 1), vision_width=32, vision_patch_size=None)
    return build_clip_from_config()


def write_tiny_clip(path: str, seed: int = 0) -> str:
    """Save a tiny CLIP's state dict to ``path`` (usable as ``MODEL.BACKBONE.NAME``)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(tiny_clip(seed).state_dict(), path)
    return path


#: trainer config nodes holding PREC (the Nemesis-fork alias ``TRAINER.CoOp`` is left at its default)
FP32_NODES = ("COOP", "CoOpNemesis", "CoOpCRT", "COCOOP", "MAPLE", "ZSCLIP")


def write_tiny_train_yaml(path: str, backbone: str, test_batch_size: int = 4, print_freq: int = 1) -> str:
    """Write a trainer overlay for fast CPU runs on ``backbone`` (32 px, batch 4, 2 epochs of SGD + cosine,
    1 constant warm-up epoch, no loader workers, PREC fp32 for every trainer: fp16 is honoured on CPU but several
    times slower; the fp16 paths have their own tests, tests/test_fp16_cpu.py) and return its path."""
    with open(path, "w") as f:
        f.write(
            "DATALOADER:\n  TRAIN_X:\n    BATCH_SIZE: 4\n  TEST:\n"
            f"    BATCH_SIZE: {test_batch_size}\n  NUM_WORKERS: 0\n"
            "INPUT:\n  SIZE: (32, 32)\n  TRANSFORMS: [\"random_flip\", \"normalize\"]\n"
            "OPTIM:\n  NAME: sgd\n  LR: 0.05\n  MAX_EPOCH: 2\n  LR_SCHEDULER: cosine\n  WARMUP_EPOCH: 1\n"
            "  WARMUP_TYPE: constant\n  WARMUP_CONS_LR: 1e-5\n"
            f"TRAIN:\n  PRINT_FREQ: {print_freq}\n"
            f"MODEL:\n  BACKBONE:\n    NAME: \"{backbone}\"\n"
            "TRAINER:\n" + "".join(f"  {node}:\n    PREC: fp32\n" for node in FP32_NODES)
        )
    return path


def tiny_eurosat_env(base, test_batch_size: int = 4, print_freq: int = 1) -> dict:
    """A generated EuroSAT under ``base/data``, a tiny CLIP file and its fast trainer overlay (``base/tiny.yaml``).

    Returns ``{"base": base, "data": <dataset root>, "cfg": <overlay path>}``.
    """
    from tests.helpers.fake_datasets import make_eurosat

    data = os.path.join(str(base), "data")
    make_eurosat(data)
    backbone = write_tiny_clip(os.path.join(str(base), "clip", "tiny.pt"))
    cfg = write_tiny_train_yaml(os.path.join(str(base), "tiny.yaml"), backbone, test_batch_size, print_freq)
    return {"base": base, "data": data, "cfg": cfg}


def reference_checkpoint(path: str, ctx: torch.Tensor, token_prefix: torch.Tensor, token_suffix: torch.Tensor,
                         epoch: int = 2) -> str:
    """A checkpoint as the reference (Dassl + CoOp) writes it: state_dict with the class-dependent
    buffers, optimizer state, a PICKLED scheduler object inside the scheduler state, val_result."""
    p = torch.nn.Parameter(ctx.clone())
    optim = torch.optim.SGD([p], lr=0.002, momentum=0.9)
    p.grad = torch.ones_like(p)
    optim.step()
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, T_max=10)
    sched_state = {"successor": sched, "finished": True, "last_epoch": 1}  # like Dassl's warmup wrapper
    state = {
        "state_dict": {"ctx": ctx.clone(), "token_prefix": token_prefix.clone(), "token_suffix": token_suffix.clone()},
        "epoch": epoch,
        "optimizer": optim.state_dict(),
        "scheduler": sched_state,
        "val_result": None,
    }
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(state, path)
    with open(os.path.join(os.path.dirname(path), "checkpoint"), "w") as f:
        f.write(os.path.basename(path) + "\n")
    return path
