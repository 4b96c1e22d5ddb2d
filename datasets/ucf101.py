"""UCF101 (action recognition, one middle frame per clip): split 1, train split 80/20."""
from __future__ import annotations

import os
import re

from dassl.data.datasets import DATASET_REGISTRY, Datum

from .utils import DataFormatError, SplitJsonDataset, make_datum, split_trainval


def split_camel_case(name: str) -> str:
    """``ApplyEyeMakeup`` -> ``Apply_Eye_Makeup`` (class name and image sub-folder)."""
    return "_".join(re.findall(r"[A-Z][^A-Z]*", name))


@DATASET_REGISTRY.register()
class UCF101(SplitJsonDataset):
    """``ucf101/UCF-101-midframes/<Camel_Case_Action>/<clip>.jpg`` plus the official ``ucfTrainTestlist/``."""

    folder = "ucf101"
    image_folder = "UCF-101-midframes"
    split_file = "split_zhou_UCF101.json"

    def build_split(self) -> tuple[list[Datum], list[Datum], list[Datum]]:
        cname2lab = {}
        with open(self.require_file(self.path("ucfTrainTestlist", "classInd.txt")), encoding="utf-8") as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 2:
                    cname2lab[fields[1]] = int(fields[0]) - 1
        trainval = self.read_data(cname2lab, "trainlist01.txt")
        test = self.read_data(cname2lab, "testlist01.txt")
        train, val = split_trainval(trainval)
        return train, val, test

    def read_data(self, cname2lab: dict[str, int], list_name: str) -> list[Datum]:
        list_path = self.require_file(self.path("ucfTrainTestlist", list_name))
        items = []
        with open(list_path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                fields = line.split()
                if not fields:
                    continue
                parts = fields[0].split("/")  # "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi"
                if len(parts) < 2:
                    raise DataFormatError(f"{list_path}:{lineno}: expected '<Action>/<clip>.avi'")
                action, clip = parts[-2:]
                if action not in cname2lab:
                    raise DataFormatError(f"{list_path}:{lineno}: action {action!r} is not in classInd.txt")
                classname = split_camel_case(action)
                impath = os.path.join(self.image_dir, classname, os.path.splitext(clip)[0] + ".jpg")
                items.append(make_datum(impath, cname2lab[action], classname))
        return items
