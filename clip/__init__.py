"""The one CLIP implementation of this codebase (OpenAI-compatible names, prompt-aware towers).

``from clip import clip`` gives the loader module (``clip._MODELS``, ``clip.load``, ``clip.tokenize``,
``clip.build_model``, ``clip.load_clip`` ...); the same entry points are re-exported here.
"""
from __future__ import annotations

from clip import clip
from clip.clip import (
    BackboneConfigError,
    CorruptWeightsError,
    MissingWeightsError,
    UnknownModelError,
    available_models,
    build_model,
    load,
    load_clip,
    load_state_dict,
    register_local_model,
    tokenize,
)
from clip.model import CLIP, TextEncoder, build_clip_from_config, convert_weights

__all__ = [
    "BackboneConfigError",
    "CLIP",
    "CorruptWeightsError",
    "MissingWeightsError",
    "TextEncoder",
    "UnknownModelError",
    "available_models",
    "build_clip_from_config",
    "build_model",
    "clip",
    "convert_weights",
    "load",
    "load_clip",
    "load_state_dict",
    "register_local_model",
    "tokenize",
]
