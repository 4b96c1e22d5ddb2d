"""Registries of the composable prompt-learning components."""
from __future__ import annotations

from dassl.utils.registry import Registry

PROMPT_LEARNER_REGISTRY = Registry("PROMPT_LEARNER")
HEAD_REGISTRY = Registry("HEAD")
REGULARISER_REGISTRY = Registry("REGULARISER")
