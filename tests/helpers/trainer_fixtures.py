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
