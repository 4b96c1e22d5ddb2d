"""Caltech-101: 100 object classes (background and ``Faces_easy`` ignored), random 50/20/30 split."""
from __future__ import annotations

from dassl.data.datasets import DATASET_REGISTRY, Datum

from .utils import SplitJsonDataset, read_and_split_data

IGNORED = ("BACKGROUND_Google", "Faces_easy")
NEW_CNAMES = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}


@DATASET_REGISTRY.register()
class Caltech101(SplitJsonDataset):
    """``caltech-101/101_ObjectCategories/<class>/*.jpg``."""

    folder = "caltech-101"
    image_folder = "101_ObjectCategories"
    split_file = "split_zhou_Caltech101.json"

    def build_split(self) -> tuple[list[Datum], list[Datum], list[Datum]]:
        return read_and_split_data(self.image_dir, ignored=IGNORED, new_cnames=NEW_CNAMES)
