from .base import PromptLearner, PromptOutput
from .cocoop import CoCoOpPromptLearner
from .coop import CLASS_TOKEN_POSITIONS, CoOpPromptLearner
from .handcrafted import HandcraftedPrompts
from .maple import MaPLePromptLearner
from .plot import PLOTPromptLearner

__all__ = ["PromptLearner", "PromptOutput", "CoOpPromptLearner", "CoCoOpPromptLearner", "MaPLePromptLearner",
           "HandcraftedPrompts", "PLOTPromptLearner", "CLASS_TOKEN_POSITIONS"]
