"""Errors raised when CLIP weights are missing, unknown or unreadable (user-fixable: ``exit_code`` 2)."""
from __future__ import annotations

__all__ = ["BackboneConfigError", "CorruptWeightsError", "MissingWeightsError", "UnknownModelError"]


class MissingWeightsError(FileNotFoundError):
    """A CLIP weights file is not where it is expected (the message says which file, where, and where from)."""

    exit_code = 2


class UnknownModelError(MissingWeightsError, RuntimeError):
    """Neither a known model name nor an existing file (also a RuntimeError, as in OpenAI's ``load``)."""


class CorruptWeightsError(RuntimeError):
    """A weights file is truncated, unreadable, fails its SHA-256 check, or does not describe a CLIP."""

    exit_code = 2


class BackboneConfigError(ValueError):
    """The run's settings cannot work with the chosen backbone (e.g. ``INPUT.SIZE`` is not its image size)."""

    exit_code = 2
