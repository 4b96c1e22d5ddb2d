"""The config side of backbones: ``MODEL.BACKBONE.PRETRAINED`` and the ``INPUT.*`` values a backbone expects.

Works on any yacs-like node (``clip/`` does not depend on ``dassl/``); ``train.py`` calls
:func:`normalize_pretrained` after the config files and :func:`finalize_backbone_cfg` after the command-line opts,
and the trainer calls :func:`check_input_cfg` once the CLIP is loaded (so the warnings land in ``log.txt``).
"""
from __future__ import annotations

import logging

from clip.errors import BackboneConfigError

logger = logging.getLogger(__name__)

__all__ = ["check_input_cfg", "finalize_backbone_cfg", "normalize_pretrained", "pretrained_value"]


def pretrained_value(value) -> str:
    """``MODEL.BACKBONE.PRETRAINED`` as a string: Dassl's booleans (and None) mean "no tag" (``""``)."""
    if value is None or isinstance(value, bool):
        return ""
    return str(value).strip()


def normalize_pretrained(cfg) -> None:
    """Dassl YAMLs write ``PRETRAINED: True``; make it None so that a later string (a tag) merges without a yacs
    type mismatch. Call between the config files and the command-line opts."""
    node = cfg.MODEL.BACKBONE
    if isinstance(node.get("PRETRAINED"), bool):
        node.PRETRAINED = None


def _same(a, b, tol: float = 1e-6) -> bool:
    a, b = list(a), list(b)
    return len(a) == len(b) and all(abs(float(x) - float(y)) <= tol for x, y in zip(a, b))


def finalize_backbone_cfg(cfg, default_input=None) -> None:
    """Make ``MODEL.BACKBONE.PRETRAINED`` a string and, for open_clip backbones, take the model's image size,
    mean, std and interpolation for every ``INPUT`` value the user left at the engine default (``default_input``:
    the default ``INPUT`` node). OpenAI names and files are left exactly as configured.
    """
    from clip import openclip

    node = cfg.MODEL.BACKBONE
    node.PRETRAINED = pretrained_value(node.get("PRETRAINED"))
    name = node.NAME
    if not name or default_input is None or not openclip.is_openclip_request(name, node.PRETRAINED):
        return
    spec = openclip.resolve(name, node.PRETRAINED)
    if isinstance(spec, str):  # OpenAI weights through the "openai" tag
        return
    pp = spec.preprocess
    wanted = {
        "SIZE": (pp["size"], pp["size"]),
        "PIXEL_MEAN": list(pp["mean"]),
        "PIXEL_STD": list(pp["std"]),
        "INTERPOLATION": pp["interpolation"],
    }
    for key, value in wanted.items():
        current, default = cfg.INPUT[key], default_input[key]
        is_default = current == default if isinstance(current, str) else _same(current, default)
        if is_default and current != value:
            cfg.INPUT[key] = type(current)(value) if isinstance(current, (list, tuple)) else value
            logger.info(f"INPUT.{key} = {cfg.INPUT[key]} (the {spec.name} backbone's; was the engine default)")


def check_input_cfg(input_cfg, model) -> None:
    """Compare the run's ``INPUT`` with the preprocessing the loaded CLIP expects (``model.preprocess_cfg``).

    Mean/std/interpolation/resize-mode differences are warnings with both values. An image size that is not the
    model's is an error for open_clip backbones (their positional embeddings fix it) and a warning otherwise.
    """
    pp = getattr(model, "preprocess_cfg", None)
    if not pp:
        return
    size = tuple(int(s) for s in input_cfg.SIZE)
    if size != (pp["size"], pp["size"]):
        msg = (f"INPUT.SIZE is {size} but the backbone expects {pp['size']}x{pp['size']} images; set INPUT.SIZE "
               f"({pp['size']}, {pp['size']})")
        if pp.get("source") == "open_clip":
            raise BackboneConfigError(msg)
        logger.warning(f"warning: {msg}")
    for key, want in (("PIXEL_MEAN", pp["mean"]), ("PIXEL_STD", pp["std"])):
        if not _same(input_cfg[key], want, 1e-5):
            logger.warning(
                f"warning: INPUT.{key} is {list(input_cfg[key])} but the backbone was trained with {list(want)} "
                f"(set INPUT.{key} {list(want)} to match)"
            )
    if input_cfg.INTERPOLATION != pp["interpolation"]:
        logger.warning(f"warning: INPUT.INTERPOLATION is {input_cfg.INTERPOLATION!r}; the backbone's preprocessing "
                       f"uses {pp['interpolation']!r}")
    if pp.get("resize_mode", "shortest") != "shortest":
        logger.warning(f"warning: the backbone's preprocessing resizes with mode {pp['resize_mode']!r} (no centre "
                       f"crop); the Dassl transforms resize the short side and crop")
