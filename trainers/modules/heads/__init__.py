from .base import Head
from .dept import DePT, match_rows
from .similarity import Similarity

__all__ = ["Head", "Similarity", "DePT", "match_rows"]
