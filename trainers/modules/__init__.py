"""Composable pieces: PromptedCLIP = prompt learner x head x regularisers on one frozen CLIP."""
from .heads import DePT, Head, Similarity
from .prompt_learners import (
    CoCoOpPromptLearner,
    CoOpPromptLearner,
    HandcraftedPrompts,
    MaPLePromptLearner,
    PromptLearner,
    PromptOutput,
)
from .prompted_clip import ModelOutput, PromptedCLIP
from .registry import HEAD_REGISTRY, PROMPT_LEARNER_REGISTRY, REGULARISER_REGISTRY
from .regularisers import KgCoOp, Nemesis, Regulariser

__all__ = [
    "PromptedCLIP", "ModelOutput", "PromptLearner", "PromptOutput", "CoOpPromptLearner", "HandcraftedPrompts",
    "CoCoOpPromptLearner", "MaPLePromptLearner", "Head", "Similarity", "DePT", "Regulariser", "Nemesis", "KgCoOp",
    "PROMPT_LEARNER_REGISTRY", "HEAD_REGISTRY", "REGULARISER_REGISTRY",
]
