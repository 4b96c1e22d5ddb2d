"""ImageNet (ILSVRC-2012): train folders for training, the val folders as test (and val); cached in preprocessed.pkl."""
from __future__ import annotations

import logging
import os
from collections import OrderedDict

from dassl.data.datasets import DATASET_REGISTRY, Datum

from .utils import DataFormatError, SplitJsonDataset, listdir_nohidden, load_datum_pickle, make_datum, save_datum_pickle

logger = logging.getLogger(__name__)


def read_classnames(text_file: str) -> OrderedDict[str, str]:
    """Parse ``classnames.txt`` (lines ``<wnid> <class name words>``) into an ordered wnid -> name dict."""
    classnames: OrderedDict[str, str] = OrderedDict()
    with open(text_file, encoding="utf-8") as f:
        for line in f:
            fields = line.strip().split(" ")
            if fields[0]:
                classnames[fields[0]] = " ".join(fields[1:])
    return classnames


def list_class_folders(image_dir: str) -> list[str]:
    """Sorted sub-folders of ``image_dir`` (files such as ``README.txt`` are skipped)."""
    return [name for name in listdir_nohidden(image_dir, sort=True) if os.path.isdir(os.path.join(image_dir, name))]


def list_images(folder: str) -> list[str]:
    """Image paths inside one class folder, in SORTED order (upstream used ``os.listdir`` order)."""
    return [os.path.join(folder, name) for name in listdir_nohidden(folder, sort=True)]


def read_folder_data(
    image_dir: str, folders: list[str], labels: dict[str, int], classnames: dict[str, str], names_file: str
) -> list[Datum]:
    """Datums for ``image_dir/<folder>/*`` with ``labels[folder]`` and ``classnames[folder]``."""
    items = []
    for folder in folders:
        if folder not in classnames:
            raise DataFormatError(f"class folder {os.path.join(image_dir, folder)} has no entry in {names_file}")
        if folder not in labels:
            raise DataFormatError(f"class folder {os.path.join(image_dir, folder)} has no train folder of that name")
        for impath in list_images(os.path.join(image_dir, folder)):
            items.append(make_datum(impath, labels[folder], classnames[folder]))
    return items


@DATASET_REGISTRY.register()
class ImageNet(SplitJsonDataset):
    """``imagenet/images/{train,val}/<wnid>/*.JPEG`` and ``imagenet/classnames.txt``.

    Labels are indices into the sorted list of train wnid folders. The full lists are cached as
    ``preprocessed.pkl`` (``{"train", "test"}``); few-shot sampling applies to train only (its cache has no
    ``"val"``), and ``val`` is the test set.
    """

    folder = "imagenet"
    image_folder = "images"
    val_is_test = True

    read_classnames = staticmethod(read_classnames)

    def load_data(self) -> tuple[list[Datum], None, list[Datum]]:
        self.preprocessed = self.path("preprocessed.pkl")
        if os.path.isfile(self.preprocessed):
            logger.info(f"Loading preprocessed data from {self.preprocessed}")
            data = load_datum_pickle(self.preprocessed, self.dataset_dir, ("train", "test"))
            if data is not None:
                return data["train"], None, data["test"]
        names_file = self.require_file(self.path("classnames.txt"), "class-name file")
        classnames = read_classnames(names_file)
        train_dir = self.require_dir(os.path.join(self.image_dir, "train"))
        val_dir = self.require_dir(os.path.join(self.image_dir, "val"))
        folders = list_class_folders(train_dir)
        labels = {wnid: label for label, wnid in enumerate(folders)}
        train = read_folder_data(train_dir, folders, labels, classnames, names_file)
        test = read_folder_data(val_dir, list_class_folders(val_dir), labels, classnames, names_file)
        logger.info(f"Saving preprocessed data to {self.preprocessed}")
        save_datum_pickle({"train": train, "test": test}, self.preprocessed)
        return train, None, test
