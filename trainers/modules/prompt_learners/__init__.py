from .base import PromptLearner, PromptOutput
from .cocoop import CoCoOpPromptLearner
from .coop import CLASS_TOKEN_POSITIONS, CoOpPromptLearner
from .handcrafted import HandcraftedPrompts
from .ivlp import IVLPPromptLearner
from .maple import MaPLePromptLearner
from .plot import PLOTPromptLearner
from .vpt import VPTPromptLearner

__all__ = ["PromptLearner", "PromptOutput", "CoOpPromptLearner", "CoCoOpPromptLearner", "MaPLePromptLearner",
           "HandcraftedPrompts", "CLASS_TOKEN_POSITIONS", "IVLPPromptLearner",
           "VPTPromptLearner", "PLOTPromptLearner"]
