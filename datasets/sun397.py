"""SUN397: partition 01 (``Training_01.txt`` / ``Testing_01.txt``), train split 80/20."""
from __future__ import annotations

import os

from dassl.data.datasets import DATASET_REGISTRY, Datum

from .utils import DataFormatError, SplitJsonDataset, make_datum, split_trainval


@DATASET_REGISTRY.register()
class SUN397(SplitJsonDataset):
    """``sun397/SUN397/<letter>/<category>[/<sub>]/*.jpg``; the line order of ``ClassName.txt`` gives the labels.

    Class names are the path parts after the letter folder, reversed and space-joined (``/b/bakery/shop`` ->
    ``shop bakery``).
    """

    folder = "sun397"
    image_folder = "SUN397"
    split_file = "split_zhou_SUN397.json"

    def build_split(self) -> tuple[list[Datum], list[Datum], list[Datum]]:
        with open(self.require_file(self.path("ClassName.txt")), encoding="utf-8") as f:
            classes = [line.strip().lstrip("/") for line in f if line.strip()]
        cname2lab = {name: label for label, name in enumerate(classes)}
        trainval = self.read_data(cname2lab, "Training_01.txt")
        test = self.read_data(cname2lab, "Testing_01.txt")
        train, val = split_trainval(trainval)
        return train, val, test

    def read_data(self, cname2lab: dict[str, int], list_name: str) -> list[Datum]:
        list_path = self.require_file(self.path(list_name))
        items = []
        with open(list_path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                relpath = line.strip().lstrip("/")  # "a/abbey/sun_xxx.jpg"
                if not relpath:
                    continue
                category = os.path.dirname(relpath)
                if category not in cname2lab:
                    raise DataFormatError(f"{list_path}:{lineno}: class /{category} is not in ClassName.txt")
                classname = " ".join(category.split("/")[1:][::-1])
                items.append(make_datum(os.path.join(self.image_dir, relpath), cname2lab[category], classname))
        return items
