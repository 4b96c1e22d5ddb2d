"""Dataset readers. Importing this package registers every reader in ``DATASET_REGISTRY``."""
from dassl.data.datasets import DATASET_REGISTRY

from .config import add_dataset_cfg

__all__ = ["DATASET_REGISTRY", "add_dataset_cfg"]
