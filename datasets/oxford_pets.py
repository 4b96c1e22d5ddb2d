"""Oxford-IIIT Pets (37 breeds): official trainval/test lists, trainval split 80/20 into train/val."""
from __future__ import annotations

import os

from dassl.data.datasets import DATASET_REGISTRY, Datum

from . import utils
from .utils import DataFormatError, SplitJsonDataset, make_datum, split_trainval


@DATASET_REGISTRY.register()
class OxfordPets(SplitJsonDataset):
    """``oxford_pets/images/<Breed>_<n>.jpg``; labels from ``annotations/{trainval,test}.txt``.

    Class names are the lower-cased image stems without the trailing ``_<n>`` (``american_bulldog``).
    """

    folder = "oxford_pets"
    image_folder = "images"
    split_file = "split_zhou_OxfordPets.json"

    # The reference exposes the split helpers as static methods of OxfordPets; keep them reachable there.
    read_split = staticmethod(utils.read_split)
    save_split = staticmethod(utils.save_split)
    split_trainval = staticmethod(utils.split_trainval)
    subsample_classes = staticmethod(utils.subsample_classes)

    def build_split(self) -> tuple[list[Datum], list[Datum], list[Datum]]:
        trainval = self.read_data("trainval.txt")
        test = self.read_data("test.txt")
        train, val = split_trainval(trainval)
        return train, val, test

    def read_data(self, list_name: str) -> list[Datum]:
        """Parse ``annotations/<list_name>`` (lines ``<stem> <class id 1..37> <species> <breed id>``)."""
        list_path = self.require_file(self.path("annotations", list_name))
        items = []
        with open(list_path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                fields = line.split()
                if not fields or fields[0].startswith("#"):
                    continue
                if len(fields) < 2 or not fields[1].isdigit():
                    raise DataFormatError(f"{list_path}:{lineno}: expected '<image stem> <class id> ...'")
                stem = fields[0]
                breed = "_".join(stem.split("_")[:-1]).lower()
                items.append(make_datum(os.path.join(self.image_dir, f"{stem}.jpg"), int(fields[1]) - 1, breed))
        return items
