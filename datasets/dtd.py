"""Describable Textures (47 classes): sorted class folders, random 50/20/30 split."""
from __future__ import annotations

from dassl.data.datasets import DATASET_REGISTRY, Datum

from . import utils
from .utils import SplitJsonDataset, read_and_split_data


@DATASET_REGISTRY.register()
class DescribableTextures(SplitJsonDataset):
    """``dtd/images/<texture>/*.jpg``."""

    folder = "dtd"
    image_folder = "images"
    split_file = "split_zhou_DescribableTextures.json"

    # The reference exposes the random splitter as a static method of DescribableTextures.
    read_and_split_data = staticmethod(utils.read_and_split_data)

    def build_split(self) -> tuple[list[Datum], list[Datum], list[Datum]]:
        return read_and_split_data(self.image_dir)
