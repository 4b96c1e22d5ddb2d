"""Food-101: sorted class folders, random 50/20/30 split (not the official 750/250 split)."""
from __future__ import annotations

from dassl.data.datasets import DATASET_REGISTRY, Datum

from .utils import SplitJsonDataset, read_and_split_data


@DATASET_REGISTRY.register()
class Food101(SplitJsonDataset):
    """``food-101/images/<dish>/*.jpg``."""

    folder = "food-101"
    image_folder = "images"
    split_file = "split_zhou_Food101.json"

    def build_split(self) -> tuple[list[Datum], list[Datum], list[Datum]]:
        return read_and_split_data(self.image_dir)
