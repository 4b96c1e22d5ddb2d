"""Data (Dassl ``dassl.data``): ``DataManager``, ``DatasetWrapper``."""
from .data_manager import DataManager, DatasetWrapper, build_data_loader, build_sampler

__all__ = ["DataManager", "DatasetWrapper", "build_data_loader", "build_sampler"]
