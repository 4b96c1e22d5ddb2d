"""Tiny random CLIPs and weights files for tests (import explicitly: ``from tests.helpers.tiny_clip import ...``).

- :func:`tiny_clip`: a small random fp32 CLIP (ViT or ResNet image tower), seeded.
- :func:`tiny_state_dict`: its OpenAI-layout state dict as stored in the checkpoints (fp16 weights).
- :func:`write_tiny_weights`: that state dict saved as a plain ``torch.save`` file or as an OpenAI-style
  TorchScript archive (with the ``input_resolution``/``context_length``/``vocab_size`` entries).
- :func:`register_tiny_clip`: writes the file and registers it under a backbone name for ``clip.load_clip``.
"""
from __future__ import annotations

import os
import warnings

import torch
from torch import nn

from clip.clip import register_local_model
from clip.model import CLIP, build_clip_from_config, convert_weights

__all__ = [
    "TINY_RESNET",
    "TINY_VIT",
    "register_tiny_clip",
    "tiny_clip",
    "tiny_state_dict",
    "write_tiny_weights",
]

#: ViT image tower: 32 px, patch 8 (16 patches + CLS), width 64 (1 head), 2 layers; text width 64, 2 layers.
TINY_VIT = dict(
    embed_dim=32,
    image_resolution=32,
    vision_layers=2,
    vision_width=64,
    vision_patch_size=8,
    context_length=77,
    vocab_size=49408,
    transformer_width=64,
    transformer_heads=1,
    transformer_layers=2,
)
#: ResNet image tower: (1, 1, 1, 1) blocks, width 16 (attention pool width 512, 8 heads), 64 px.
TINY_RESNET = dict(TINY_VIT, image_resolution=64, vision_layers=(1, 1, 1, 1), vision_width=16, vision_patch_size=None)


def tiny_clip(seed: int = 0, resnet: bool = False, **overrides) -> CLIP:
    """A seeded random fp32 CLIP in eval mode (sizes :data:`TINY_VIT` / :data:`TINY_RESNET`, then ``overrides``)."""
    sizes = dict(TINY_RESNET if resnet else TINY_VIT, **overrides)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = build_clip_from_config(**sizes)
        # Non-trivial LayerNorm / BatchNorm / logit-scale values so that tests see them.
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, (nn.LayerNorm, nn.BatchNorm2d)):
                    module.weight.normal_(1.0, 0.1)
                    module.bias.normal_(0.0, 0.1)
                if isinstance(module, nn.BatchNorm2d):
                    module.running_mean.normal_(0.0, 0.1)
                    module.running_var.uniform_(0.5, 1.5)
    finally:
        torch.random.set_rng_state(state)
    return model


def tiny_state_dict(seed: int = 0, resnet: bool = False, **overrides) -> dict[str, torch.Tensor]:
    """OpenAI-layout state dict of :func:`tiny_clip` with the checkpoint dtypes (fp16 weights, fp32 norms)."""
    model = tiny_clip(seed, resnet, **overrides)
    convert_weights(model)
    return {k: v.clone() for k, v in model.state_dict().items()}


class _ArchiveModule(nn.Module):
    """Carries the parameters of a CLIP at OpenAI's key paths plus the JIT metadata entries."""

    def __init__(self, model: CLIP, state_dict: dict[str, torch.Tensor]) -> None:
        super().__init__()
        model.load_state_dict(state_dict)
        for name, child in model.named_children():
            self.add_module(name, child)
        for name, param in model.named_parameters(recurse=False):
            self.register_parameter(name, param)
        self.register_buffer("input_resolution", torch.tensor(model.visual.input_resolution))
        self.register_buffer("context_length", torch.tensor(model.context_length))
        self.register_buffer("vocab_size", torch.tensor(model.vocab_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.logit_scale.exp()


def write_tiny_weights(
    path: str | os.PathLike,
    seed: int = 0,
    resnet: bool = False,
    torchscript: bool = False,
    wrap: bool = False,
    **overrides,
) -> str:
    """Save the tiny state dict to ``path`` (plain, ``{"state_dict": sd}`` with ``wrap``, or a TorchScript archive)."""
    path = os.fspath(path)
    sd = tiny_state_dict(seed, resnet, **overrides)
    if torchscript:
        model = tiny_clip(seed, resnet, **overrides)
        convert_weights(model)
        archive = _ArchiveModule(model, sd)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            traced = torch.jit.trace(archive, torch.zeros(1, dtype=torch.float16))
            torch.jit.save(traced, path)
    else:
        torch.save({"state_dict": sd} if wrap else sd, path)
    return path


def register_tiny_clip(name: str, folder: str | os.PathLike, seed: int = 0, resnet: bool = False) -> str:
    """Write a tiny weights file into ``folder`` and register it as backbone ``name``; returns the file path."""
    path = write_tiny_weights(os.path.join(os.fspath(folder), f"{name.replace('/', '-')}.pt"), seed, resnet)
    register_local_model(name, path)
    return path
