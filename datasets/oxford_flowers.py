"""Oxford 102 Flowers: labels from ``imagelabels.mat``, names from ``cat_to_name.json``, random 50/20/30 split."""
from __future__ import annotations

import os

import numpy as np

from dassl.data.datasets import DATASET_REGISTRY, Datum

from .utils import DataFormatError, SplitJsonDataset, read_json, split_per_class


@DATASET_REGISTRY.register()
class OxfordFlowers(SplitJsonDataset):
    """``oxford_flowers/jpg/image_%05d.jpg``; ``imagelabels.mat`` gives the 1-based class of image i+1."""

    folder = "oxford_flowers"
    image_folder = "jpg"
    split_file = "split_zhou_OxfordFlowers.json"

    def build_split(self) -> tuple[list[Datum], list[Datum], list[Datum]]:
        from scipy.io import loadmat

        label_path = self.require_file(self.path("imagelabels.mat"))
        names_path = self.require_file(self.path("cat_to_name.json"))
        labels = np.asarray(loadmat(label_path)["labels"]).ravel()
        lab2cname = read_json(names_path)
        by_label: dict[int, list[str]] = {}  # first-seen label order, image index order
        for index, label in enumerate(labels):
            by_label.setdefault(int(label), []).append(os.path.join(self.image_dir, f"image_{index + 1:05d}.jpg"))
        groups = []
        for label, impaths in by_label.items():
            if str(label) not in lab2cname:
                raise DataFormatError(f"{names_path} has no name for class {label}")
            groups.append((label - 1, lab2cname[str(label)], impaths))
        return split_per_class(groups, p_trn=0.5, p_val=0.2)
