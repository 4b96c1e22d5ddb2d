from .base import Head
from .dept import DePT, match_rows
from .plot import PLOT
from .similarity import Similarity

__all__ = ["Head", "Similarity", "DePT", "PLOT", "match_rows"]
