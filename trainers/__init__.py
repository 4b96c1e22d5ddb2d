"""Trainers. Importing this package registers every trainer in ``TRAINER_REGISTRY``."""
from .config import add_trainer_cfg

__all__ = ["add_trainer_cfg"]
