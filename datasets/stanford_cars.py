"""Stanford Cars (196 models): official train/test, train split 80/20; split paths relative to the dataset folder."""
from __future__ import annotations

import os

import numpy as np

from dassl.data.datasets import DATASET_REGISTRY, Datum

from .utils import DataFormatError, SplitJsonDataset, make_datum, split_trainval


def _scalar(value):
    """The single element of a (nested) MATLAB cell/array as loaded by scipy."""
    return np.asarray(value).ravel()[0]


@DATASET_REGISTRY.register()
class StanfordCars(SplitJsonDataset):
    """``stanford_cars/{cars_train,cars_test}/*.jpg`` with the devkit ``.mat`` annotations.

    Class names move the trailing year to the front (``Tesla Model S Sedan 2012`` -> ``2012 Tesla Model S Sedan``).
    """

    folder = "stanford_cars"
    image_folder = ""  # split paths are relative to the dataset folder ("cars_train/00001.jpg")
    split_file = "split_zhou_StanfordCars.json"
    required_dirs = ("cars_train", "cars_test")

    def build_split(self) -> tuple[list[Datum], list[Datum], list[Datum]]:
        meta_path = self.require_file(self.path("devkit", "cars_meta.mat"))
        trainval = self.read_data("cars_train", self.path("devkit", "cars_train_annos.mat"), meta_path)
        test = self.read_data("cars_test", self.path("cars_test_annos_withlabels.mat"), meta_path)
        train, val = split_trainval(trainval)
        return train, val, test

    def read_data(self, image_folder: str, anno_path: str, meta_path: str) -> list[Datum]:
        from scipy.io import loadmat

        annos = np.asarray(loadmat(self.require_file(anno_path))["annotations"]).ravel()
        names = [str(_scalar(n)) for n in np.asarray(loadmat(meta_path)["class_names"]).ravel()]
        items = []
        for anno in annos:
            fname = str(_scalar(anno["fname"]))
            label = int(_scalar(anno["class"])) - 1
            if not 0 <= label < len(names):
                raise DataFormatError(f"{anno_path}: {fname} has class {label + 1}, not in {meta_path}")
            words = names[label].split(" ")
            classname = " ".join([words[-1]] + words[:-1])
            items.append(make_datum(os.path.join(self.dataset_dir, image_folder, fname), label, classname))
        return items
