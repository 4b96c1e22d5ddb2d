"""FGVC-Aircraft (100 variants): the official train/val/test lists, read directly (no split JSON)."""
from __future__ import annotations

import os

from dassl.data.datasets import DATASET_REGISTRY, Datum

from .utils import DataFormatError, SplitJsonDataset, make_datum


@DATASET_REGISTRY.register()
class FGVCAircraft(SplitJsonDataset):
    """``fgvc_aircraft/images/<id>.jpg``; the line order of ``variants.txt`` gives the labels and
    ``images_variant_{train,val,test}.txt`` (``<id> <variant name>``) the splits."""

    folder = "fgvc_aircraft"
    image_folder = "images"
    split_file = None

    def build_split(self) -> tuple[list[Datum], list[Datum], list[Datum]]:
        with open(self.require_file(self.path("variants.txt")), encoding="utf-8") as f:
            classnames = [line.strip() for line in f if line.strip()]
        cname2lab = {name: label for label, name in enumerate(classnames)}
        return tuple(self.read_data(cname2lab, f"images_variant_{split}.txt") for split in ("train", "val", "test"))

    def read_data(self, cname2lab: dict[str, int], list_name: str) -> list[Datum]:
        list_path = self.require_file(self.path(list_name))
        items = []
        with open(list_path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                fields = line.strip().split(" ")
                if not fields[0]:
                    continue
                classname = " ".join(fields[1:])
                if classname not in cname2lab:
                    raise DataFormatError(f"{list_path}:{lineno}: variant {classname!r} is not in variants.txt")
                impath = os.path.join(self.image_dir, f"{fields[0]}.jpg")
                items.append(make_datum(impath, cname2lab[classname], classname))
        return items
